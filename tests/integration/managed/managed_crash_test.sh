#!/usr/bin/env bash
# kill -9 of r3serve --managed during write-back loses no acknowledged write: writes are
# flushed (acknowledged durable), the pushes are throttled so most of them are still dirty,
# r3serve is killed; restarted on the same cache it serves exactly the written data (the
# journal says what is dirty), and SIGTERM then pushes every byte to the remote.
source "$(dirname "$0")/lib_managed.sh"
require nbdcopy cmp sha256sum
require_nbd_python

port=$(free_port)
head -c 64M /dev/urandom >"$TEST_TMP/remote.img"
cp "$TEST_TMP/remote.img" "$TEST_TMP/expected.img"
start_remote rem "$port" "file:$TEST_TMP/remote.img"
ruri=$(remote_uri "$port")

# Pushes at 1 MiB/s: the 24 MiB written below take far longer than the test waits.
start_managed man "$ruri" --cache "$TEST_TMP/cache" --push-rate 1M --push-interval 1h --pull-workers 2
uri=$(managed_uri man)

echo "== writes, each batch acknowledged by a FLUSH"
pattern_file "$TEST_TMP/a.bin" $((16 << 20)) 1  # whole chunks
pattern_file "$TEST_TMP/b.bin" $((8 << 20)) 2   # at an odd offset: partial chunks at both ends
pattern_file "$TEST_TMP/c.bin" 4097 3           # a small one straddling a chunk boundary
nbd_py "$uri" "
h.pwrite(open('$TEST_TMP/a.bin', 'rb').read(), 8 << 20)
h.flush()
h.pwrite(open('$TEST_TMP/b.bin', 'rb').read(), (32 << 20) + 12345)
h.pwrite(open('$TEST_TMP/c.bin', 'rb').read(), (60 << 20) - 2000)
h.flush()
"
overlay "$TEST_TMP/expected.img" $((8 << 20)) "$TEST_TMP/a.bin"
overlay "$TEST_TMP/expected.img" $(((32 << 20) + 12345)) "$TEST_TMP/b.bin"
overlay "$TEST_TMP/expected.img" $(((60 << 20) - 2000)) "$TEST_TMP/c.bin"

echo "== kill -9 during write-back"
kill -KILL "$man_pid"
wait "$man_pid" 2>/dev/null || true
cmp -s "$TEST_TMP/remote.img" "$TEST_TMP/expected.img" &&
	fail "the remote already had everything: the kill did not happen during write-back"
echo "ok: killed with writes still to push"

echo "== restart on the same cache: the written data is served"
start_managed man "$ruri" --cache "$TEST_TMP/cache" --push-interval 1h
line=$(grep -o "resumed the cache .*" "$TEST_TMP/man.log") || { cat "$TEST_TMP/man.log" >&2; fail "not resumed"; }
echo "ok: $line"
dirty=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) dirty chunks.*/\1/p')
[ "${dirty:-0}" -gt 0 ] || fail "the journal replayed no dirty chunks"
nbdcopy "$uri" "$TEST_TMP/served.bin"
[ "$(sha "$TEST_TMP/served.bin")" = "$(sha "$TEST_TMP/expected.img")" ] ||
	fail "after kill -9 the managed export does not serve the acknowledged writes"
echo "ok: served sha256 $(sha "$TEST_TMP/served.bin")"

echo "== SIGTERM: the remote gets every acknowledged byte"
stop_r3serve man
stop_r3serve rem
[ "$(sha "$TEST_TMP/remote.img")" = "$(sha "$TEST_TMP/expected.img")" ] || fail "the remote lacks acknowledged writes"
echo "ok: remote sha256 $(sha "$TEST_TMP/remote.img")"

echo "== kill -9 again, right after the writes, with nothing left dirty before: same result"
start_remote rem "$port" "file:$TEST_TMP/remote.img"
start_managed man "$ruri" --cache "$TEST_TMP/cache" --push-rate 64K --push-interval 1h
pattern_file "$TEST_TMP/d.bin" $((2 << 20)) 4
nbd_py "$uri" "
h.pwrite(open('$TEST_TMP/d.bin', 'rb').read(), 100)
h.flush()
"
overlay "$TEST_TMP/expected.img" 100 "$TEST_TMP/d.bin"
kill -KILL "$man_pid"
wait "$man_pid" 2>/dev/null || true
start_managed man "$ruri" --cache "$TEST_TMP/cache"
nbdcopy "$uri" "$TEST_TMP/served.bin"
cmp "$TEST_TMP/served.bin" "$TEST_TMP/expected.img" || fail "second crash: served data differs"
stop_r3serve man
stop_r3serve rem
cmp "$TEST_TMP/remote.img" "$TEST_TMP/expected.img" || fail "second crash: the remote differs"
echo PASS
