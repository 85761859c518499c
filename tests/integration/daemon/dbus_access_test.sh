#!/usr/bin/env bash
# Who may change things: the bus policy admits root and group r3map only, and the daemon
# checks the caller's uid and groups itself, so a wrong policy cannot let others in.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"

nobody=65534
group=4242 # the daemon's access group in this test
echo "{\"access_group\": $group}" >"$TEST_TMP/r3mapd.json"

nothing_changed() {
	busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports | grep -qx 'ao 0' \
		|| fail "a refused call left an export behind"
	busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListMounts | grep -qx 'ao 0' \
		|| fail "a refused call left a mount behind"
}

echo "== with the project's policy file, nobody is turned away by the bus (AccessDenied)"
start_bus
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
expect_r3ctl 4 --as $nobody --json export memory:1M --listen 127.0.0.1:0
[ "$(json_error)" = org.freedesktop.DBus.Error.AccessDenied ] || fail "error: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $nobody mount memory:1M
grep -q "access denied" "$TEST_TMP/err" || fail "message: $(cat "$TEST_TMP/err")"
expect_r3ctl 4 --as $nobody ls
nothing_changed
daemon_alive
stop_r3mapd d
kill "$bus_pid"
wait "$bus_pid" 2>/dev/null || true

echo "== with a policy that lets everyone through, the daemon refuses nobody (NotPermitted)"
start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
expect_r3ctl 4 --as $nobody --json export memory:1M --listen 127.0.0.1:0
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "error: $(cat "$TEST_TMP/out")"
grep -q "uid $nobody may not Export" "$TEST_TMP/out" || fail "message does not name the caller"
expect_r3ctl 4 --as $nobody --json mount memory:1M
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "mount: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $nobody log-level debug
expect_r3ctl 0 log-level
[ "$(cat "$TEST_TMP/out")" = info ] || fail "a refused SetLogLevel changed the level"
nothing_changed
grep -q "refused for uid $nobody" "$TEST_TMP/d.log" || fail "refusals are not logged"

echo "== reading is allowed; a member of the access group may change things, by any of its groups"
expect_r3ctl 0 --as $nobody ls
expect_r3ctl 0 --as "$nobody:$nobody:$group" export memory:1M --listen 127.0.0.1:0
expect_r3ctl 0 --as "$nobody:$group" export memory:1M --listen 127.0.0.1:0
expect_r3ctl 0 exports
[ "$(grep -c '^[0-9]' "$TEST_TMP/out")" = 2 ] || fail "group members' exports missing"

echo "== nobody cannot stop an export either, and it keeps serving"
expect_r3ctl 4 --as $nobody --json unexport 1
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "Stop: $(cat "$TEST_TMP/out")"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports | grep -q '"/org/r3map/exports/1"' \
	|| fail "the export went away"
expect_r3ctl 0 --as "$nobody:$group" unexport 1

daemon_alive
stop_r3mapd d
echo PASS
