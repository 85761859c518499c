#!/usr/bin/env bash
# The remote goes away under r3serve --managed. For 30 s (the remote killed and started
# again on the same port and file): chunks in the cache are still read and written, and a
# read of a chunk only the remote has waits and completes once the remote is back, since
# --remote-timeout is longer than the outage. With a short --remote-timeout (the remote
# stopped with SIGSTOP) such a read fails with EIO instead, and works again after SIGCONT.
# Nothing written during an outage is lost: SIGTERM pushes it once the remote is back; a
# SIGTERM while it is away fails (exit 1) and the next start with the cache pushes it.
source "$(dirname "$0")/lib_managed.sh"
require nbdcopy cmp sha256sum
require_nbd_python
outage=30

port=$(free_port)
head -c 64M /dev/urandom >"$TEST_TMP/remote.img"
cp "$TEST_TMP/remote.img" "$TEST_TMP/expected.img"
start_remote rem "$port" "file:$TEST_TMP/remote.img"
start_managed long "$(remote_uri "$port")" --cache "$TEST_TMP/long" --background no --remote-timeout 90s
# The short case's URI has no deadline of its own: --remote-timeout must bound one call to a
# stopped remote too, not only the retries (the r3:// client's own deadline is 60 s).
start_managed short "$(remote_uri "$port")" --cache "$TEST_TMP/short" --background no --remote-timeout 2s
long=$(managed_uri long)
short=$(managed_uri short)

# Pull the first 8 MiB into both caches.
for uri in "$long" "$short"; do
	nbd_py "$uri" "
exp = open('$TEST_TMP/expected.img', 'rb').read(8 << 20)
assert h.pread(8 << 20, 0) == exp, 'first 8 MiB differ'
"
done

echo "== a ${outage} s outage, remote-timeout 90 s"
kill -KILL "$rem_pid"
wait "$rem_pid" 2>/dev/null || true
cut=$(date +%s)
nbd_py "$long" "
exp = open('$TEST_TMP/expected.img', 'rb').read(8 << 20)
assert h.pread(8 << 20, 0) == exp, 'cached data differs during the outage'
data = open('/dev/urandom', 'rb').read(1 << 20)
open('$TEST_TMP/during.bin', 'wb').write(data)
h.pwrite(data, 3 << 20)
h.flush()
assert h.pread(1 << 20, 3 << 20) == data
"
overlay "$TEST_TMP/expected.img" $((3 << 20)) "$TEST_TMP/during.bin"
echo "ok: cached chunks read, written and flushed while the remote is gone"
# A read of a chunk only the remote has: it waits.
nbd_py "$long" "
open('$TEST_TMP/waiter.bin', 'wb').write(h.pread(1 << 16, 40 << 20))
" 2>"$TEST_TMP/waiter.err" &
waiter=$!
track "$waiter"
sleep $((outage - ($(date +%s) - cut)))
kill -0 "$waiter" 2>/dev/null || { cat "$TEST_TMP/waiter.err" >&2; fail "the read of a remote chunk ended during the outage"; }
start_remote rem "$port" "file:$TEST_TMP/remote.img"
echo "remote back after $(($(date +%s) - cut)) s"
wait "$waiter" || { cat "$TEST_TMP/waiter.err" >&2; fail "the waiting read failed after the remote came back"; }
cmp -s -i $((40 << 20)):0 -n 65536 "$TEST_TMP/expected.img" "$TEST_TMP/waiter.bin" || fail "the waiting read returned other bytes"
echo "ok: the read waited for the remote and completed $(($(date +%s) - cut)) s after the cut"

echo "== remote-timeout 2 s: a read of a remote chunk fails with EIO during an outage"
kill -STOP "$rem_pid"
status=0
timeout 60 /usr/bin/python3 -c "
import nbd, sys, errno
h = nbd.NBD()
h.connect_uri(sys.argv[1])
exp = open('$TEST_TMP/expected.img', 'rb').read(1 << 20)
assert h.pread(1 << 20, 0) == exp, 'cached data differs during the outage'
try:
    h.pread(1 << 16, 50 << 20)
except nbd.Error as e:
    print('read failed:', e.string, 'errno', e.errno)
    sys.exit(0 if e.errno in (errno.EIO, 'EIO') else 3)  # libnbd gives the errno's name
sys.exit(4)
" "$short" >"$TEST_TMP/eio.out" 2>&1 || status=$?
kill -CONT "$rem_pid"
cat "$TEST_TMP/eio.out"
[ "$status" -ne 124 ] || fail "the read hung instead of failing"
[ "$status" -eq 0 ] || fail "the read of a remote chunk did not fail with EIO (status $status)"
grep -q "remote stayed unreachable for 2000 ms" "$TEST_TMP/short.log" || fail "the timeout was not logged"
kill -0 "$short_pid" || fail "r3serve died"
nbd_py "$short" "
exp = open('$TEST_TMP/expected.img', 'rb').read()[50 << 20:(50 << 20) + (1 << 16)]
assert h.pread(1 << 16, 50 << 20) == exp, 'the remote chunk differs after SIGCONT'
"
echo "ok: the remote chunk reads again after SIGCONT"

echo "== SIGTERM while the remote is away: exit 1, the cache keeps the writes for the next start"
kill -STOP "$rem_pid"
pattern_file "$TEST_TMP/offline.bin" 65536 9
nbd_py "$short" "
h.pwrite(open('$TEST_TMP/offline.bin', 'rb').read(), 0)
h.flush()
"
overlay "$TEST_TMP/expected.img" 0 "$TEST_TMP/offline.bin"
kill -TERM "$short_pid"
status=0
wait "$short_pid" || status=$?
kill -CONT "$rem_pid"
[ "$status" -eq 1 ] || { cat "$TEST_TMP/short.log" >&2; fail "SIGTERM without the remote exited $status, wanted 1"; }
grep -q "the cache keeps the dirty chunks for the next start" "$TEST_TMP/short.log" ||
	{ cat "$TEST_TMP/short.log" >&2; fail "the failed final push was not explained"; }
start_managed short "$(remote_uri "$port")" --cache "$TEST_TMP/short" --background no --remote-timeout 2s
grep -Eq "resumed the cache .*, [1-9][0-9]* dirty chunks" "$TEST_TMP/short.log" ||
	{ cat "$TEST_TMP/short.log" >&2; fail "the restart did not resume the dirty chunks"; }
echo "ok: $(grep -o 'resumed the cache .*' "$TEST_TMP/short.log")"

echo "== SIGTERM with the remote back: what was written during the outages is pushed"
stop_r3serve long
stop_r3serve short
stop_r3serve rem
cmp "$TEST_TMP/remote.img" "$TEST_TMP/expected.img" || fail "the remote lacks the write made during the outage"
echo PASS
