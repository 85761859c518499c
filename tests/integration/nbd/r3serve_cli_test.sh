#!/usr/bin/env bash
# r3serve as a program: usage errors, pid file, clean SIGTERM with a client connected.
source "$(dirname "$0")/../lib.sh"
require nbdcopy cmp

expect_exit() {
	local want=$1
	shift
	local got=0
	"$R3SERVE" "$@" >"$TEST_TMP/out" 2>&1 || got=$?
	[ "$got" -eq "$want" ] || { cat "$TEST_TMP/out"; fail "r3serve $* exited $got, wanted $want"; }
}

echo "== usage errors exit 2 with a message"
expect_exit 2
grep -q "no BACKEND_URI given" "$TEST_TMP/out" || fail "missing-URI message"
grep -q "^usage: r3serve" "$TEST_TMP/out" || fail "usage not printed"
expect_exit 2 --socket "$TEST_TMP/x" --listen 127.0.0.1:1 memory:1M
grep -q "exactly one of" "$TEST_TMP/out" || fail "socket/listen message"
expect_exit 2 --bogus memory:1M
grep -q "unknown option '--bogus'" "$TEST_TMP/out" || fail "unknown option message"
expect_exit 2 --socket "$TEST_TMP/x" --max-request 10 memory:1M
expect_exit 2 --socket "$TEST_TMP/x" --log-level loud memory:1M
expect_exit 2 --socket "$TEST_TMP/x" memory:1M memory:2M
grep -q "need a name" "$TEST_TMP/out" || fail "unnamed second export message"
expect_exit 0 --help

echo "== bad backends and addresses exit 1 naming the problem"
expect_exit 1 --socket "$TEST_TMP/x" memory:0
grep -q "greater than 0" "$TEST_TMP/out" || fail "size 0 message"
expect_exit 1 --socket "$TEST_TMP/x" nfs://host/x
grep -q "unknown backend scheme 'nfs'" "$TEST_TMP/out" || fail "scheme message"
expect_exit 1 --listen 256.1.1.1:99 memory:1M
expect_exit 1 --socket "$TEST_TMP/no/such/dir/s" memory:1M
[ ! -e "$TEST_TMP/x" ] || fail "a failed start left a socket behind"
echo precious >"$TEST_TMP/image"
expect_exit 1 --socket "$TEST_TMP/image" memory:1M
grep -q "not a socket" "$TEST_TMP/out" || fail "regular-file socket path message"
[ "$(cat "$TEST_TMP/image")" = precious ] || fail "r3serve replaced a regular file with its socket"

echo "== pid file, SIGTERM with an idle client connected, data flushed"
head -c 32M /dev/urandom >"$TEST_TMP/src"
start_r3serve srv --socket "$TEST_TMP/s.sock" "file:$TEST_TMP/disk.img?size=32M"
[ "$(cat "$TEST_TMP/srv.pid")" = "$srv_pid" ] || fail "pid file content"
nbdcopy "$TEST_TMP/src" "$(unix_uri "$TEST_TMP/s.sock")"
# An idle connection must not keep the server from stopping.
/usr/bin/python3 -c '
import nbd, sys, time
h = nbd.NBD(); h.connect_unix(sys.argv[1]); open(sys.argv[2], "w").write("connected"); time.sleep(30)' \
	"$TEST_TMP/s.sock" "$TEST_TMP/idle.connected" &
track $!
wait_for_file "$TEST_TMP/idle.connected" || fail "the idle client did not connect"
start=$(date +%s)
stop_r3serve srv
[ $(( $(date +%s) - start )) -lt 10 ] || fail "SIGTERM took too long with an idle client"
[ ! -e "$TEST_TMP/srv.pid" ] || fail "pid file left behind"
[ ! -e "$TEST_TMP/s.sock" ] || fail "socket left behind"
cmp "$TEST_TMP/src" "$TEST_TMP/disk.img" || fail "data not in the file after SIGTERM"
grep -q "SIGTERM: stopping" "$TEST_TMP/srv.log" || fail "no stop message"

echo "== a live socket is not stolen"
start_r3serve one --socket "$TEST_TMP/live.sock" memory:1M
expect_exit 1 --socket "$TEST_TMP/live.sock" memory:1M
grep -q "in use" "$TEST_TMP/out" || fail "in-use message"
stop_r3serve one
echo PASS
