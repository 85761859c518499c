#!/usr/bin/env bash
# Meson tests "vm_dbus" and "vm_migrate": boots the test guest once and runs GUEST_SCRIPT
# in it (default dbus_guest.sh: r3mapd on a private system bus, mounts on real /dev/nbdN,
# an fd passed to an unprivileged process; migrate_guest.sh: a live ext4 moved between two
# r3mapd).
#   dbus_vm_test.sh BUILD_DIR [GUEST_SCRIPT]
# Exit 77 (skip) only when qemu-system-x86_64 is missing; logs in
# BUILD_DIR/tests/vm/NAME-out (NAME: the script's name up to its first _).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"
script="${2:-dbus_guest.sh}"

source "$here/vm_lib.sh"
vm_preflight
R3MAPD="$build/daemon/r3mapd" R3CTL="$build/cli/r3ctl/r3ctl" MMAP_PATTERN="$build/tests/vm/mmap_pattern"
NBD_NETLINK_CHECK="$build/tests/vm/nbd_netlink_check" R3SERVE="$build/cli/r3serve/r3serve"
for bin in "$R3MAPD" "$R3CTL" "$MMAP_PATTERN" "$NBD_NETLINK_CHECK" "$R3SERVE"; do
	[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
done

guest="$("$here/prepare-guest.sh")" || { echo "FAIL: preparing the guest failed" >&2; exit 1; }
out="$build/tests/vm/${script%%_*}-out"
rm -rf "$out"
mkdir -p "$out"
status=0
"$here/run-guest.sh" "$guest" "$out" "${R3_VM_TIMEOUT:-300}" \
	"$here/$script" /run/r3results "$R3MAPD" "$R3CTL" "$MMAP_PATTERN" "$NBD_NETLINK_CHECK" "$R3SERVE" || status=$?
cat "$out/guest.log" 2>/dev/null
if [ "$status" -ne 0 ] || ! grep -q '^PASS$' "$out/guest.log" 2>/dev/null; then
	echo "---- console (last 40 lines of $out/console.log)"
	tail -n 40 "$out/console.log" 2>/dev/null
	echo "FAIL: the guest test failed (status $status)"
	exit 1
fi
if [ -f "$out/r3ctl-ls.txt" ]; then
	echo "---- r3ctl ls in the guest"
	cat "$out/r3ctl-ls.txt"
fi
