#!/usr/bin/env bash
# Meson test "vm": boots one TCG guest with Debian's kernel (nbd.ko) and runs the kernel
# NBD tests of guest-tests.sh in it against this build's r3serve.
#   vm-test.sh BUILD_DIR [TEST...]
# Exit 77 (skip) only when qemu-system-x86_64 is missing. A timeout, a guest that dies or
# any failed test fails loudly, with the console log and the test logs kept in
# BUILD_DIR/tests/vm/out (R3_VM_OUT; R3_VM_MEMORY is the guest's RAM in MiB).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "$1" && pwd)"
shift

source "$here/vm_lib.sh"
vm_preflight

r3serve="$build/cli/r3serve/r3serve"
[ -x "$r3serve" ] || { echo "FAIL: $r3serve is not built" >&2; exit 1; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${guest_tests[@]}")

start=$(date +%s.%N)
guest="$("$here/prepare-guest.sh")" || { echo "FAIL: preparing the guest failed" >&2; exit 1; }
out="${R3_VM_OUT:-$build/tests/vm/out}"
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
	# A panic's reason and an OOM kill are printed long before the stack the tail shows.
	echo "---- kernel events in the console (first 40)"
	grep -E 'Kernel panic|Out of memory|oom-kill|Killed process|invoked oom-killer|BUG:|blocked for more than|segfault' \
		"$out/console.log" 2>/dev/null | head -n 40
	echo "---- console (last 60 lines of $out/console.log)"
	tail -n 60 "$out/console.log" 2>/dev/null
	echo "FAIL: $passed of ${#tests[@]} guest tests passed (guest status $status)"
	exit 1
fi
echo "OK: all ${#tests[@]} guest tests passed in ${took}s"
