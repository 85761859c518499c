#!/usr/bin/env bash
# r3mapd as a service: READY=1 once the name is owned, WATCHDOG=1 pings, STOPPING=1 and a
# clean exit 0 on SIGTERM with a client connected (data flushed, name released), a bad
# configuration stops startup naming the key, and r3ctl explains when there is no daemon.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require nbdcopy cmp

start_bus

echo "== r3ctl without a daemon, and without a bus"
expect_r3ctl 3 ls
grep -q "r3mapd is not running" "$TEST_TMP/err" || fail "message: $(cat "$TEST_TMP/err")"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TEST_TMP/nothing-here" expect_r3ctl 3 --json ls
grep -q "cannot talk to the system bus" "$TEST_TMP/out" || fail "message: $(cat "$TEST_TMP/out")"

echo "== bad configurations stop startup with a message naming the key"
bad_config() {
	local text=$1 want=$2
	printf '%s' "$text" >"$TEST_TMP/bad.json"
	local status=0
	timeout 10 "$R3MAPD" --config "$TEST_TMP/bad.json" >"$TEST_TMP/bad.log" 2>&1 || status=$?
	[ "$status" -eq 1 ] || fail "config '$text': exit $status"
	grep -qF -- "$want" "$TEST_TMP/bad.log" || fail "config '$text': wanted '$want', got: $(cat "$TEST_TMP/bad.log")"
	name_owned && fail "a daemon with a bad configuration owns the name"
	return 0
}
bad_config '{"default_chunk_size": 3000}' "key 'default_chunk_size': chunk size 3000 is not a power of two"
bad_config '{"max_request_size": "1K"}' "key 'max_request_size': 1 KiB is outside"
bad_config '{"allowed_schemes": ["memory", "nfs"]}' "key 'allowed_schemes': unknown scheme 'nfs'"
bad_config '{"allowed_schemes": "memory"}' "key 'allowed_schemes': expected an array"
bad_config '{"log_level": "loud"}' "key 'log_level': \"loud\" is not one of"
bad_config '{"colour": "red"}' "key 'colour': unknown key (known: default_chunk_size"
bad_config '{"log_level": "info",}' "not valid JSON"
bad_config '[1, 2]' "expected a JSON object"
status=0
"$R3MAPD" --config "$TEST_TMP/missing.json" >"$TEST_TMP/bad.log" 2>&1 || status=$?
[ "$status" -eq 1 ] && grep -q "missing.json: cannot read" "$TEST_TMP/bad.log" || fail "missing --config file"
status=0
"$R3MAPD" --bogus >"$TEST_TMP/bad.log" 2>&1 || status=$?
[ "$status" -eq 2 ] && grep -q "unknown argument '--bogus'" "$TEST_TMP/bad.log" || fail "bad argument"

echo "== READY=1 after the name is owned, WATCHDOG=1 at half the interval"
python3 "$(dirname "$0")/notify_listener.py" "$TEST_TMP/notify.sock" "$TEST_TMP/notify.log" &
track $!
wait_for_file "$TEST_TMP/notify.log" || fail "notify listener did not start"
NOTIFY_SOCKET="$TEST_TMP/notify.sock" WATCHDOG_USEC=400000 start_r3mapd d
for _ in $(seq 50); do grep -q "READY=1" "$TEST_TMP/notify.log" && break; sleep 0.1; done
grep -q "READY=1" "$TEST_TMP/notify.log" || fail "no READY=1"
sleep 1.2
pings=$(grep -c "WATCHDOG=1" "$TEST_TMP/notify.log")
[ "$pings" -ge 4 ] && [ "$pings" -le 9 ] || fail "$pings WATCHDOG=1 in 1.2 s at a 400 ms watchdog"
grep -q "STOPPING=1" "$TEST_TMP/notify.log" && fail "STOPPING=1 while running"

echo "== a second daemon cannot take the name and leaves the first alone"
status=0
timeout 10 "$R3MAPD" >"$TEST_TMP/second.log" 2>&1 || status=$?
[ "$status" -eq 1 ] && grep -q "cannot own org.r3map.r3mapd" "$TEST_TMP/second.log" \
	|| fail "second daemon: exit $status: $(cat "$TEST_TMP/second.log")"
daemon_alive

echo "== SIGTERM with a client connected: STOPPING=1, data flushed, exports stopped, exit 0"
expect_r3ctl 0 export "file:$TEST_TMP/disk.img?size=8M" --listen 127.0.0.1:0
listen=$(cat "$TEST_TMP/out")
head -c 8M /dev/urandom >"$TEST_TMP/src"
nbdcopy "$TEST_TMP/src" "nbd://$listen"
# An idle client that stays connected through the shutdown.
python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); open(sys.argv[3], "w").write("connected"); time.sleep(60)' \
	"${listen%:*}" "${listen##*:}" "$TEST_TMP/idle.connected" &
client=$!
track $client
wait_for_file "$TEST_TMP/idle.connected" || fail "the idle client did not connect"
stop_r3mapd d
grep -q "STOPPING=1" "$TEST_TMP/notify.log" || fail "no STOPPING=1"
name_owned && fail "the name is still owned after exit"
cmp "$TEST_TMP/src" "$TEST_TMP/disk.img" || fail "data written before SIGTERM is not in the file"
python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)' \
	"${listen%:*}" "${listen##*:}" 2>/dev/null && fail "the export still accepts connections"
grep -q "export 1: stopped" "$TEST_TMP/d.log" || fail "export not stopped in the log"
# The documented order: refuse calls, mounts, exports, then the name.
awk '/shutting down/{a=NR} /export 1: stopped/{b=NR} /\[daemon\] stopped/{c=NR} END{exit !(a && a<b && b<c)}' \
	"$TEST_TMP/d.log" || { cat "$TEST_TMP/d.log"; fail "shutdown order"; }

echo "== losing the bus stops the daemon cleanly with exit 1"
start_r3mapd d2
expect_r3ctl 0 export memory:1M --listen 127.0.0.1:0
kill "$bus_pid"
status=0
for _ in $(seq 100); do kill -0 "$d2_pid" 2>/dev/null || break; sleep 0.1; done
wait "$d2_pid" || status=$?
[ "$status" -eq 1 ] || { cat "$TEST_TMP/d2.log"; fail "exit $status after losing the bus"; }
grep -q "lost the system bus" "$TEST_TMP/d2.log" || fail "no message about the bus"
grep -q "export 1: stopped" "$TEST_TMP/d2.log" || fail "export not stopped after losing the bus"
echo PASS
