#!/usr/bin/env bash
# The x-r3map:present and x-r3map:dirty meta contexts of a managed export, as nbdinfo --map
# shows them: with --background no only what was read (or written) is present, and what was
# written but not yet pushed is dirty; once the writer disconnects (a flush) the push empties the dirty map.
# Skips while the server does not offer the contexts.
source "$(dirname "$0")/lib_managed.sh"
require nbdinfo
require_nbd_python

port=$(free_port)
start_remote rem "$port" memory:16M
start_managed man "$(remote_uri "$port")" --cache "$TEST_TMP/cache" --background no --push-interval 1h
uri=$(managed_uri man)

status=0
nbdinfo --map=x-r3map:present "$uri" >"$TEST_TMP/probe.map" 2>"$TEST_TMP/probe.err" || status=$?
if [ "$status" -ne 0 ]; then
	grep -qi "does not support metadata context\|not supported\|unsupported" "$TEST_TMP/probe.err" &&
		skip "the server does not offer x-r3map:present yet ($(head -1 "$TEST_TMP/probe.err"))"
	cat "$TEST_TMP/probe.err" >&2
	fail "nbdinfo --map=x-r3map:present failed"
fi

# map CONTEXT: "offset length flags" lines, adjacent runs with the same flags merged.
map() {
	nbdinfo --map="$1" "$uri" | awk '
		{ if (n && $3 == f && $1 == o + l) { l += $2 } else { if (n) print o, l, f; o = $1; l = $2; f = $3; n = 1 } }
		END { if (n) print o, l, f }'
}
expect_map() {
	local context=$1 want=$2 got
	got=$(map "$context")
	[ "$got" = "$want" ] || fail "$context map:
$got
wanted:
$want"
	echo "ok: $context: $(echo "$got" | tr '\n' ';')"
}

M=$((1 << 20))
expect_map x-r3map:present "0 $((16 * M)) 0"
expect_map x-r3map:dirty "0 $((16 * M)) 0"

# Read [1M, 2M) and one byte at 5M (its 64 KiB chunk becomes present); write 64 KiB at 10M.
# The connection stays open while the maps are read, so no flush kicks the pusher yet.
hold_nbd_py writer "$uri" "
h.pread(1 << 20, 1 << 20)
h.pread(1, 5 << 20)
h.pwrite(b'w' * 65536, 10 << 20)"
expect_map x-r3map:present "0 $M 0
$M $M 1
$((2 * M)) $((3 * M)) 0
$((5 * M)) 65536 1
$((5 * M + 65536)) $((5 * M - 65536)) 0
$((10 * M)) 65536 1
$((10 * M + 65536)) $((6 * M - 65536)) 0"
expect_map x-r3map:dirty "0 $((10 * M)) 0
$((10 * M)) 65536 1
$((10 * M + 65536)) $((6 * M - 65536)) 0"

# The writer disconnects, which flushes: the push empties the dirty map soon.
release_nbd_py writer
for _ in $(seq 30); do
	[ "$(map x-r3map:dirty)" = "0 $((16 * M)) 0" ] && break
	sleep 1
done
expect_map x-r3map:dirty "0 $((16 * M)) 0"
map x-r3map:present | grep -q "^$((10 * M)) 65536 1$" || fail "the pushed chunk is no longer present"
stop_r3serve man
stop_r3serve rem
echo PASS
