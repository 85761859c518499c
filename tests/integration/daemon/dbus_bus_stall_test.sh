#!/usr/bin/env bash
# A stalled dbus-daemon (SIGSTOP) is noticed by r3mapd's bus check (bus_check_seconds):
# it logs the stall and the recovery, keeps serving its exports the whole time (their
# data does not pass the bus), and stays up to answer calls once the bus is back.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require nbdcopy cmp pgrep

echo "{\"bus_check_seconds\": 1, \"state_dir\": \"$TEST_TMP/state\"}" >"$TEST_TMP/r3mapd.json"
start_bus
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
bus_daemon=$(pgrep -f "dbus-daemon.*$TEST_TMP/bus" | head -n1)
[ -n "$bus_daemon" ] || fail "cannot find the private dbus-daemon's pid"
stopped=""
resume_bus() { [ -z "$stopped" ] || kill -CONT "$bus_daemon" 2>/dev/null || true; }
trap 'resume_bus; _cleanup' EXIT

expect_r3ctl 0 --json export memory:16M --listen 127.0.0.1:0 --name disk
listen=$(json_field 'j["listen"]')
head -c 8M /dev/urandom >"$TEST_TMP/src"
nbdcopy "$TEST_TMP/src" "nbd://$listen/disk"

echo "== dbus-daemon stopped: the stall is logged, the export still serves"
kill -STOP "$bus_daemon"
stopped=1
for _ in $(seq 100); do grep -q "system bus has not answered" "$TEST_TMP/d.log" && break; sleep 0.1; done
grep "system bus has not answered" "$TEST_TMP/d.log" || { cat "$TEST_TMP/d.log" >&2; fail "no stall logged within 10 s"; }
rm -f "$TEST_TMP/back"
nbdcopy "nbd://$listen/disk" "$TEST_TMP/back" || fail "the export stopped serving while the bus was stalled"
cmp <(head -c 8M "$TEST_TMP/back") "$TEST_TMP/src" || fail "the export served other bytes while the bus was stalled"
kill -0 "$d_pid" || fail "r3mapd exited while the bus was stalled"
echo "ok: served 8 MiB during the stall"

echo "== dbus-daemon resumed: the recovery is logged and calls are answered"
kill -CONT "$bus_daemon"
stopped=""
for _ in $(seq 100); do grep -q "system bus answers again" "$TEST_TMP/d.log" && break; sleep 0.1; done
grep "system bus answers again" "$TEST_TMP/d.log" || { cat "$TEST_TMP/d.log" >&2; fail "no recovery logged within 10 s"; }
daemon_alive
expect_r3ctl 0 unexport 1
stop_r3mapd d
echo PASS
