#!/usr/bin/env bash
# Export over D-Bus: Export + ListExports + an nbdinfo/nbdcopy client through the daemon's
# server + statistics + Stop, on TCP and on a UNIX socket.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require nbdinfo nbdcopy cmp

group=4242 # the access group; a number needs no group entry
echo "{\"access_group\": $group}" >"$TEST_TMP/r3mapd.json"
start_bus
# As under the unit's UMask=0077.
old_umask=$(umask)
umask 077
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
umask "$old_umask"

echo "== Export on TCP port 0 returns an object whose Listen has the real port"
run_r3ctl --json export memory:16M --listen 127.0.0.1:0 --name disk --description "test disk"
[ "$rc" -eq 0 ] || { cat "$TEST_TMP/err"; fail "export failed"; }
path=$(json_field 'j["path"]')
listen=$(json_field 'j["listen"]')
[ "$path" = /org/r3map/exports/1 ] || fail "object path $path"
[[ "$listen" =~ ^127\.0\.0\.1:[0-9]+$ ]] && [ "${listen##*:}" != 0 ] || fail "listen address $listen"

echo "== ListExports names it"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports >"$TEST_TMP/list"
grep -q '^ao 1 "/org/r3map/exports/1"$' "$TEST_TMP/list" || { cat "$TEST_TMP/list"; fail "ListExports"; }

echo "== nbdinfo sees the export through the daemon"
nbdinfo --json "nbd://$listen/disk" >"$TEST_TMP/info"
python3 - "$TEST_TMP/info" <<'PY' || fail "nbdinfo output"
import json, sys
info = json.load(open(sys.argv[1]))
e = info["exports"][0]
assert e["export-name"] == "disk", e
assert e["export-size"] == 16 << 20, e
assert e["description"] == "test disk", e
PY

echo "== data written by one client is read back by another"
head -c 16M /dev/urandom >"$TEST_TMP/src"
nbdcopy "$TEST_TMP/src" "nbd://$listen/disk"
nbdcopy "nbd://$listen/disk" "$TEST_TMP/back"
cmp "$TEST_TMP/src" "$TEST_TMP/back" || fail "read back differs"

echo "== Statistics and ConnectedClients move"
run_r3ctl --json exports
[ "$(json_field 'j[0]["statistics"]["bytes_written"] >= 16<<20')" = True ] || { cat "$TEST_TMP/out"; fail "bytes_written"; }
[ "$(json_field 'j[0]["statistics"]["bytes_read"] >= 16<<20')" = True ] || fail "bytes_read"
[ "$(json_field 'j[0]["statistics"]["connections"] >= 2')" = True ] || fail "connections"
[ "$(json_field 'j[0]["connected_clients"]')" = 0 ] || fail "clients left connected"
busctl --system get-property org.r3map.r3mapd /org/r3map/exports/1 org.r3map.Export1 ExportName | grep -qx 's "disk"' \
	|| fail "ExportName property"

echo "== a UNIX socket export next to it"
expect_r3ctl 0 export "file:$TEST_TMP/disk.img?size=4M" --listen "unix:$TEST_TMP/e.sock" --read-only
[ "$(cat "$TEST_TMP/out")" = "unix:$TEST_TMP/e.sock" ] || fail "unix listen address: $(cat "$TEST_TMP/out")"
nbdinfo --json "nbd+unix:///?socket=$TEST_TMP/e.sock" >"$TEST_TMP/info"
grep -q '"is_read_only": true' "$TEST_TMP/info" || fail "read-only flag not advertised"

echo "== members of the access group may connect to the UNIX socket, others may not"
[ "$(stat -c '%a %u %g' "$TEST_TMP/e.sock")" = "660 0 $group" ] || fail "socket: $(stat -c '%a %u %g' "$TEST_TMP/e.sock")"
setpriv --reuid=65534 --regid=65534 --groups=$group nbdinfo --size "nbd+unix:///?socket=$TEST_TMP/e.sock" \
	>"$TEST_TMP/size" 2>&1 || fail "a member could not connect: $(cat "$TEST_TMP/size")"
[ "$(cat "$TEST_TMP/size")" = $((4 << 20)) ] || fail "size through the socket: $(cat "$TEST_TMP/size")"
setpriv --reuid=65534 --regid=65534 --clear-groups nbdinfo --size "nbd+unix:///?socket=$TEST_TMP/e.sock" \
	>"$TEST_TMP/size" 2>&1 && fail "someone outside the group connected"
grep -qi "permission denied" "$TEST_TMP/size" || fail "refused for another reason: $(cat "$TEST_TMP/size")"
expect_r3ctl 0 exports
[ "$(grep -c '^[0-9]' "$TEST_TMP/out")" = 2 ] || { cat "$TEST_TMP/out"; fail "exports table"; }

echo "== the address in use and a bad address are refused precisely"
expect_r3ctl 1 --json export memory:1M --listen "$listen"
[ "$(json_error)" = org.r3map.Error.AddressInUse ] || fail "address in use: $(cat "$TEST_TMP/out")"
expect_r3ctl 1 --json export memory:1M --listen 300.1.2.3:1
[ "$(json_error)" = org.r3map.Error.InvalidArgument ] || fail "bad address: $(cat "$TEST_TMP/out")"

echo "== Stop ends the export and its socket"
expect_r3ctl 0 unexport 1
nbdinfo "nbd://$listen/disk" >/dev/null 2>&1 && fail "export 1 still serving after Stop"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports >"$TEST_TMP/list"
grep -q '^ao 1 "/org/r3map/exports/2"$' "$TEST_TMP/list" || { cat "$TEST_TMP/list"; fail "ListExports after Stop"; }
expect_r3ctl 5 unexport 1
busctl --system call org.r3map.r3mapd /org/r3map/exports/2 org.r3map.Export1 Stop
[ ! -e "$TEST_TMP/e.sock" ] || fail "UNIX socket left behind"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports | grep -qx 'ao 0' || fail "exports left"

stop_r3mapd d
echo PASS
