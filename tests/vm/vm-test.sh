#!/usr/bin/env bash
# Meson test "vm": boots one TCG guest with Debian's kernel (nbd.ko) and runs the kernel
# NBD tests of guest-tests.sh in it against this build's r3serve.
#   vm-test.sh BUILD_DIR [TEST...]
# Exit 77 (skip) only when qemu-system-x86_64 is missing. A timeout, a guest that dies or
# any failed test fails loudly, with the console log and the test logs kept in
# BUILD_DIR/tests/vm/out.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"
shift

if ! command -v qemu-system-x86_64 > /dev/null; then
	echo "SKIP: qemu-system-x86_64 is not installed (scripts/bootstrap.sh installs it)"
	exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "FAIL: the vm tests share the host's root with the guest and need root" >&2
	exit 1
fi

r3serve="$build/cli/r3serve"
[ -x "$r3serve" ] || { echo "FAIL: $r3serve is not built" >&2; exit 1; }
tests=("$@")
expected=(memory_ext4 file_persistence mounted_sigterm flush_trim concurrent_attach busy_device multi_conn netlink_commands methods kill9)
[ ${#tests[@]} -gt 0 ] || tests=("${expected[@]}")

start=$(date +%s.%N)
guest="$("$here/prepare-guest.sh")" || { echo "FAIL: preparing the guest failed" >&2; exit 1; }
out="$build/tests/vm/out"
rm -rf "$out"
mkdir -p "$out"

status=0
"$here/run-guest.sh" "$guest" "$out" "${R3_VM_TIMEOUT:-600}" \
	"$here/guest-tests.sh" "$r3serve" /run/r3results "$guest/udev" "${tests[@]}" || status=$?
took=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')

echo "---- guest results (suite wall time ${took}s, guest $(cat "$guest/ready"))"
[ -f "$out/results.txt" ] && cat "$out/results.txt"
passed=0
for t in "${tests[@]}"; do
	if grep -q "^PASS $t " "$out/results.txt" 2>/dev/null; then
		passed=$((passed + 1))
	else
		echo "---- $t did not pass; its log:"
		cat "$out/$t.log" 2>/dev/null || echo "(no log: the guest never ran it)"
	fi
done
if [ "$status" -ne 0 ] || [ "$passed" -ne ${#tests[@]} ]; then
	echo "---- console (last 60 lines of $out/console.log)"
	tail -n 60 "$out/console.log" 2>/dev/null
	echo "FAIL: $passed of ${#tests[@]} guest tests passed (guest status $status)"
	exit 1
fi
echo "OK: all ${#tests[@]} guest tests passed in ${took}s"
