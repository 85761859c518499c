#!/usr/bin/env bash
# Boots the test guest once under TCG with a hard timeout and runs a script inside it.
#   run-guest.sh GUEST_DIR OUT_DIR TIMEOUT_SECONDS SCRIPT [ARGS...]
# SCRIPT runs as root in the guest with the host's root file system mounted read-only
# (so it sees the same paths as here) and OUT_DIR mounted read-write at /run/r3results;
# /run is the guest's writable tmpfs and TMPDIR.
# The guest console goes to OUT_DIR/console.log. Exit status: the script's, 124 on
# timeout (QEMU killed), 125 when the guest died without reporting one.
# R3_VM_DISK_MIB: also a scratch disk of that size (virtio-blk, /dev/vda in the guest, a
# sparse file in OUT_DIR removed afterwards), for tests whose data must not sit in RAM.
set -euo pipefail
guest="$1" out="$2" limit="$3" script="$4"
shift 4

mkdir -p "$out"
rm -f "$out/console.log" "$out/exit-status"
{
	echo 'cd /run/tmp'
	printf 'export R3VM=1\n'
	printf '%q ' /bin/bash "$script" "$@"
	echo
	echo 'echo $? > /run/r3results/exit-status'
} > "$out/run.sh"

smp="${R3_VM_SMP:-2}"
disk=()
if [ -n "${R3_VM_DISK_MIB:-}" ]; then
	rm -f "$out/scratch.img"
	truncate -s "${R3_VM_DISK_MIB}M" "$out/scratch.img"
	# cache=unsafe: the host never needs this file after the run, so its flushes are skipped.
	disk=(-drive "file=$out/scratch.img,format=raw,if=virtio,cache=unsafe")
fi
status=0
timeout --kill-after=10 "$limit" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -M pc -m "${R3_VM_MEMORY:-1536}" -smp "$smp" \
	-kernel "$guest/vmlinux" -initrd "$guest/initrd.gz" \
	-append "console=ttyS0 panic=-1 loglevel=5 nokaslr" \
	-display none -serial "file:$out/console.log" -monitor none -no-reboot -nic none \
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
	-virtfs "local,path=$out,mount_tag=results,security_model=none,multidevs=remap" \
	"${disk[@]}" </dev/null || status=$?
rm -f "$out/scratch.img"

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
	echo "run-guest: TIMEOUT after ${limit}s: QEMU killed; console log: $out/console.log" >&2
	exit 124
fi
if [ "$status" -ne 0 ]; then
	echo "run-guest: QEMU failed with status $status; console log: $out/console.log" >&2
	exit 125
fi
if [ ! -s "$out/exit-status" ]; then
	echo "run-guest: the guest stopped without reporting a result; console log: $out/console.log" >&2
	exit 125
fi
exit "$(cat "$out/exit-status")"
