#!/usr/bin/env bash
# r3ctl as a program: usage errors exit 2 with a message, --help, --json on every command,
# tables, and the device/id resolution of unmount/status.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"

echo "== usage errors exit 2 before talking to anyone"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TEST_TMP/no-bus-needed"
usage_error() {
	local want=$1
	shift
	expect_r3ctl 2 "$@"
	grep -qF -- "$want" "$TEST_TMP/err" || fail "r3ctl $*: wanted '$want', got: $(cat "$TEST_TMP/err")"
}
usage_error "no command given"
usage_error "unknown command 'frobnicate'" frobnicate
usage_error "missing argument" mount
usage_error "unknown option '--colour'" mount memory:1M --colour red
usage_error "option '--size' needs a value" mount memory:1M --size
usage_error "--size: size 'lots' does not start with a number" mount memory:1M --size lots
usage_error "--fd needs a program after '--'" mount memory:1M --fd
usage_error "a program after '--' needs --fd" mount memory:1M -- true
usage_error "--rm goes with --fd" mount memory:1M --rm
usage_error "--listen ADDR is required" export memory:1M
usage_error "unexpected argument 'extra'" ls extra
usage_error "a program to run is missing" open 1
usage_error "--timeout needs a number of seconds" --timeout soon ls
expect_r3ctl 2 --json mount
[ "$(json_error)" = usage ] || fail "--json usage error: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 --help
grep -q "^  mount " "$TEST_TMP/out" || fail "--help lists no commands"
expect_r3ctl 0 mount --help
grep -q "^usage: r3ctl mount URI" "$TEST_TMP/out" || fail "mount --help"
expect_r3ctl 0 --version
grep -q "^r3ctl [0-9]" "$TEST_TMP/out" || fail "--version"

start_bus
start_r3mapd d

echo "== --json on every command, text otherwise"
expect_r3ctl 0 --json version
[ "$(json_field 'j["r3mapd"] == j["r3ctl"]')" = True ] || fail "version json"
expect_r3ctl 0 --json ls
[ "$(cat "$TEST_TMP/out")" = "[]" ] || fail "ls json: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 ls
[ "$(head -n1 "$TEST_TMP/out" | tr -s ' ')" = "ID DEVICE STATE SIZE CHUNK MODE BACKEND" ] || fail "ls header"
expect_r3ctl 0 --json exports
[ "$(cat "$TEST_TMP/out")" = "[]" ] || fail "exports json"
expect_r3ctl 0 export memory:2M --listen 127.0.0.1:0 --json
[ "$(json_field 'j["size"]')" = 2097152 ] || fail "export json size"
expect_r3ctl 0 exports
grep -q "^1  *127.0.0.1:[0-9]*  *2 MiB  *rw  *0  *memory:2M$" "$TEST_TMP/out" || { cat "$TEST_TMP/out"; fail "exports table"; }
expect_r3ctl 0 --json log-level debug
[ "$(json_field 'j["log_level"]')" = debug ] || fail "log-level json"
expect_r3ctl 0 log-level
[ "$(cat "$TEST_TMP/out")" = debug ] || fail "log level not kept"
grep -q "log level set to debug" "$TEST_TMP/d.log" || fail "level change not logged"
expect_r3ctl 0 --json unexport 1
[ "$(json_field 'j["stopped"]')" = True ] || fail "unexport json"

echo "== mounts by id or device that do not exist are NotFound (exit 5)"
expect_r3ctl 5 status 3
expect_r3ctl 5 unmount /dev/nbd3
expect_r3ctl 5 --json open nbd3 -- true
[ "$(json_error)" = org.r3map.Error.NotFound ] || fail "open json"

stop_r3mapd d
echo PASS
