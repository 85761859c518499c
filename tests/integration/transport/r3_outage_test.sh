#!/usr/bin/env bash
# The export server is killed for 10 s in the middle of a long nbdcopy through an r3://
# backend and started again: the copy stalls, resumes and completes; the data is
# identical. An outage longer than the client's deadline gives the NBD client EIO; the
# local server survives it and serves again once the export is back.
source "$(dirname "$0")/lib_transport.sh"
require nbdcopy cmp

head -c 256M /dev/urandom >"$TEST_TMP/src.bin"
port=$(free_port)
start_r3serve exp --r3 --listen "127.0.0.1:$port" --name disk "file:$TEST_TMP/exp.img?size=256M"
start_r3serve loc --socket "$TEST_TMP/loc.sock" "r3://127.0.0.1:$port/disk?deadline=60s&timeout=5s&connections=2"
loc_uri=$(unix_uri "$TEST_TMP/loc.sock")

echo "== kill the export for 10 s during a copy"
# Throttled to ~20 MiB/s: the copy takes about 13 s without the outage.
(throttled_cat "$TEST_TMP/src.bin" 20 | nbdcopy - "$loc_uri") &
copy=$!
track "$copy"
sleep 3
kill -9 "$exp_pid"
wait "$exp_pid" 2>/dev/null || true
cut=$(date +%s)
sleep 10
kill -0 "$copy" 2>/dev/null || fail "the copy ended during the outage"
start_r3serve exp --r3 --listen "127.0.0.1:$port" --name disk "file:$TEST_TMP/exp.img"
wait "$copy" || fail "nbdcopy failed across the outage"
echo "copy completed $(($(date +%s) - cut)) s after the cut"
nbdcopy "$loc_uri" "$TEST_TMP/back.bin"
cmp "$TEST_TMP/src.bin" "$TEST_TMP/back.bin" || fail "data differs after the outage"
cmp "$TEST_TMP/src.bin" "$TEST_TMP/exp.img" || fail "the export's file differs after the outage"
grep -q "reconnected after" "$TEST_TMP/loc.log" || fail "no reconnect logged"
grep -q "requests in flight will be sent again" "$TEST_TMP/loc.log" || fail "no resend logged"

echo "== an outage longer than the deadline: EIO to the NBD client, no crash"
start_r3serve short --socket "$TEST_TMP/short.sock" "r3://127.0.0.1:$port/disk?deadline=3s&timeout=2s"
short_uri=$(unix_uri "$TEST_TMP/short.sock")
kill -9 "$exp_pid"
wait "$exp_pid" 2>/dev/null || true
status=0
timeout 60 nbdcopy "$short_uri" "$TEST_TMP/none.bin" 2>"$TEST_TMP/eio.log" || status=$?
[ "$status" -ne 0 ] || fail "nbdcopy succeeded without the export"
[ "$status" -ne 124 ] || fail "nbdcopy hung instead of failing"
grep -qi "input/output error" "$TEST_TMP/eio.log" || { cat "$TEST_TMP/eio.log" >&2; fail "no EIO reached the client"; }
echo "ok: nbdcopy failed with: $(grep -i -m1 'input/output error' "$TEST_TMP/eio.log")"
kill -0 "$short_pid" || fail "the local server died"
grep -q "not done within the 3000 ms deadline" "$TEST_TMP/short.log" || fail "the deadline was not logged"

start_r3serve exp --r3 --listen "127.0.0.1:$port" --name disk "file:$TEST_TMP/exp.img"
nbdcopy "$short_uri" "$TEST_TMP/again.bin" || fail "no service after the export came back"
cmp "$TEST_TMP/src.bin" "$TEST_TMP/again.bin" || fail "data differs after the long outage"
stop_r3serve short
stop_r3serve loc
stop_r3serve exp
echo PASS
