#!/usr/bin/env bash
# redis:// behind r3serve: a 64 MiB nbdcopy round trip, a second server over the same keys
# sees the data, unaligned writes, geometry checks, and a Redis restart during a copy.
source "$(dirname "$0")/lib_transport.sh"
require nbdcopy cmp redis-cli qemu-io

head -c 64M /dev/urandom >"$TEST_TMP/src.bin"
start_redis redis "" --appendonly yes --appendfsync always
uri="redis://127.0.0.1:$redis_port/vm42?size=64M&chunk=64K"

echo "== round trip"
start_r3serve a --socket "$TEST_TMP/a.sock" "$uri"
round_trip "$TEST_TMP/src.bin" "$(unix_uri "$TEST_TMP/a.sock")"
keys=$(redis-cli -p "$redis_port" --scan --pattern 'vm42:*' | wc -l)
[ "$keys" -eq 1025 ] || fail "expected 1024 chunk keys and a meta key, found $keys"

echo "== unaligned writes read back exactly (read-modify-write of partial chunks)"
qemu-io -f raw -c 'write -P 0x5a 65531 70000' "$(unix_uri "$TEST_TMP/a.sock")" >/dev/null
qemu-io -f raw -c 'read -P 0x5a 65531 70000' "$(unix_uri "$TEST_TMP/a.sock")" | grep -q "read 70000/70000" ||
	fail "unaligned write did not read back"
stop_r3serve a

echo "== a second server over the same keys sees the data"
start_r3serve b --socket "$TEST_TMP/b.sock" "redis://127.0.0.1:$redis_port/vm42"
nbdcopy "$(unix_uri "$TEST_TMP/b.sock")" "$TEST_TMP/b.bin"
# The pattern written above replaced bytes 65531..135530 of the source.
python3 - "$TEST_TMP/src.bin" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
d[65531:65531 + 70000] = b"\x5a" * 70000
open(p, "wb").write(d)
PY
cmp "$TEST_TMP/src.bin" "$TEST_TMP/b.bin" || fail "second server sees other data"

echo "== geometry mismatches are refused"
expect_refused geo "holds a device of 67108864 bytes" --socket "$TEST_TMP/c.sock" \
	"redis://127.0.0.1:$redis_port/vm42?size=1G"
expect_refused new "is new; give its size" --socket "$TEST_TMP/c.sock" "redis://127.0.0.1:$redis_port/fresh"
expect_refused down "Connection refused" --socket "$TEST_TMP/c.sock" "redis://127.0.0.1:$(free_port)/x?size=1M"

echo "== redis restarts during a copy: the copy stalls, then completes"
head -c 64M /dev/urandom >"$TEST_TMP/src2.bin"
# Throttled to ~16 MiB/s so the copy is still running when redis goes away.
(throttled_cat "$TEST_TMP/src2.bin" 16 | nbdcopy - "$(unix_uri "$TEST_TMP/b.sock")") &
copy=$!
sleep 1.5
kill -9 "$redis_pid"
sleep 3
kill -0 "$copy" 2>/dev/null || fail "the copy ended during the outage"
start_redis redis "$redis_port" --appendonly yes --appendfsync always
wait "$copy" || fail "nbdcopy failed across the redis restart"
nbdcopy "$(unix_uri "$TEST_TMP/b.sock")" "$TEST_TMP/b2.bin"
cmp "$TEST_TMP/src2.bin" "$TEST_TMP/b2.bin" || fail "data differs after the redis restart"
grep -q "retrying" "$TEST_TMP/b.log" || fail "the outage was not logged"
stop_r3serve b
echo PASS
