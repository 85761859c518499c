#!/usr/bin/env bash
# r3serve --managed in front of an r3:// remote, served over NBD: nbdcopy round trips a
# random 64 MiB image, fio verifies random writes, a FLUSH makes the pusher send the data
# soon, SIGTERM pushes everything: the remote (read through a direct export) then hashes
# the same as what the managed export served.
source "$(dirname "$0")/lib_managed.sh"
require nbdcopy cmp sha256sum
require_nbd_python

head -c 64M /dev/urandom >"$TEST_TMP/src.bin"
port=$(free_port)
start_remote rem "$port" memory:64M
start_managed man "$(remote_uri "$port")" --cache "$TEST_TMP/cache" --push-interval 1h
uri=$(managed_uri man)
grep -q "managed export '': $(remote_uri "$port") (67108864 bytes, chunks of 64 KiB, cache $TEST_TMP/cache" \
	"$TEST_TMP/man.log" || { cat "$TEST_TMP/man.log" >&2; fail "no managed export logged"; }

echo "== nbdcopy in and out"
round_trip "$TEST_TMP/src.bin" "$uri"
echo "ok: 64 MiB round trip"

echo "== fio: random writes with crc32c verification"
if command -v fio >/dev/null && fio --enghelp 2>/dev/null | grep -qw nbd; then
	fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --bsrange=4k-128k --iodepth=16 \
		--size=32M --offset=16M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--output="$TEST_TMP/fio.txt" || { cat "$TEST_TMP/fio.txt"; fail "fio failed"; }
	grep -q "err= 0" "$TEST_TMP/fio.txt" || { cat "$TEST_TMP/fio.txt"; fail "fio reported errors"; }
	echo "ok: fio verified"
else
	echo "fio or its nbd engine is missing: fio part not run"
fi

echo "== FLUSH: a write and a flush reach the remote without waiting for the push interval"
pattern_file "$TEST_TMP/flushed.bin" 300000 7
# The client stays connected while the remote is checked: a disconnect flushes too.
hold_nbd_py flusher "$uri" "
data = open('$TEST_TMP/flushed.bin', 'rb').read()
h.pwrite(data, 5000000)
h.flush()
assert h.pread(len(data), 5000000) == data"
# The remote holds it once the kicked pusher ran: poll it through a direct export, bounded.
pushed=no
for _ in $(seq 30); do
	read_remote "$port" "$TEST_TMP/remote.bin"
	if cmp -s -i 5000000:0 -n 300000 "$TEST_TMP/remote.bin" "$TEST_TMP/flushed.bin"; then
		pushed=yes
		break
	fi
	sleep 1
done
release_nbd_py flusher
[ "$pushed" = yes ] || fail "a flushed write was not pushed despite the FLUSH (push interval 1h)"
echo "ok: the flushed write is on the remote"

echo "== one more write, then SIGTERM: the remote equals what was served"
pattern_file "$TEST_TMP/late.bin" 1048576 8
nbd_py "$uri" "h.pwrite(open('$TEST_TMP/late.bin', 'rb').read(), 40 << 20)"
nbdcopy "$uri" "$TEST_TMP/served.bin"
cmp -s -i $((40 << 20)):0 -n 1048576 "$TEST_TMP/served.bin" "$TEST_TMP/late.bin" || fail "the late write is not served"
stop_r3serve man
grep -q "everything is on the remote" "$TEST_TMP/man.log" || { cat "$TEST_TMP/man.log" >&2; fail "no final push logged"; }
read_remote "$port" "$TEST_TMP/remote.bin"
[ "$(sha "$TEST_TMP/remote.bin")" = "$(sha "$TEST_TMP/served.bin")" ] ||
	fail "the remote differs from what the managed export served"
echo "ok: remote sha256 $(sha "$TEST_TMP/remote.bin") equals the served image"

echo "== restart on the same cache: resumes, serves the same bytes"
start_managed man "$(remote_uri "$port")" --cache "$TEST_TMP/cache"
grep -q "resumed" "$TEST_TMP/man.log" || { cat "$TEST_TMP/man.log" >&2; fail "the restart did not resume the cache"; }
nbdcopy "$uri" "$TEST_TMP/again.bin"
[ "$(sha "$TEST_TMP/again.bin")" = "$(sha "$TEST_TMP/served.bin")" ] || fail "the resumed export serves other bytes"
stop_r3serve man
stop_r3serve rem
echo PASS
