#!/usr/bin/env bash
# Who may change things: the bus policy admits root and group r3map only, and the daemon
# checks the caller itself, so a wrong policy cannot let others in. The daemon trusts only
# the uid the bus reports and looks its groups up in the group database: a process's own
# groups, which it may change after connecting, do not count. And a member of the group
# still cannot make the daemon, which runs as root, open a local file for it.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"

nobody=65534
other=1    # "daemon": has a user entry, is not in the group
group=4242 # the daemon's access group in this test; nobody is its member
getent passwd $nobody >/dev/null && getent passwd $other >/dev/null || skip "users $nobody and $other are needed"
getent group $group >/dev/null && skip "gid $group exists here; this test wants its own"
echo "{\"access_group\": $group}" >"$TEST_TMP/r3mapd.json"
with_group_members "r3map-it:x:$group:$(getent passwd $nobody | cut -d: -f1)"

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

echo "== with a policy that lets everyone through, the daemon refuses who is not in the group (NotPermitted)"
start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
expect_r3ctl 4 --as $other --json export memory:1M --listen 127.0.0.1:0
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "error: $(cat "$TEST_TMP/out")"
grep -q "uid $other may not Export" "$TEST_TMP/out" || fail "message does not name the caller"
grep -q "usermod -aG $group USER" "$TEST_TMP/out" || fail "message does not say how to get in"
expect_r3ctl 4 --as $other --json mount memory:1M
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "mount: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $other log-level debug
expect_r3ctl 0 log-level
[ "$(cat "$TEST_TMP/out")" = info ] || fail "a refused SetLogLevel changed the level"
nothing_changed
grep -q "refused for uid $other" "$TEST_TMP/d.log" || fail "refusals are not logged"

echo "== a process that puts itself in the group is still refused: only the group database counts"
# setpriv stands in for any way a process gains a group after connecting (setgroups with a
# saved uid 0, a setgid program): the daemon must not read the groups of the caller's process.
expect_r3ctl 4 --as "$other:$other:$group" --json export memory:1M --listen 127.0.0.1:0
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "supplementary group: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as "$other:$group" --json mount memory:1M
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "primary group: $(cat "$TEST_TMP/out")"
nothing_changed

echo "== a member cannot have the root daemon open a local file: file:, dir:, token-file=, tls-*="
echo "secret-root-only-line" >"$TEST_TMP/secret"
chmod 600 "$TEST_TMP/secret"
expect_r3ctl 4 --as $nobody --json export "file:$TEST_TMP/secret" --listen 127.0.0.1:0
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "file: export: $(cat "$TEST_TMP/out")"
grep -q "may not use scheme 'file'" "$TEST_TMP/out" || fail "message: $(cat "$TEST_TMP/out")"
grep -q "only memory, r3, redis, s3 (unprivileged_schemes" "$TEST_TMP/out" || fail "no hint: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $nobody --json export "file:/etc/shadow" --listen 127.0.0.1:0
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "/etc/shadow: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $nobody --json mount "file:$TEST_TMP/secret"
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "file: mount: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $nobody --json export "dir:$TEST_TMP/chunks?size=1M" --listen 127.0.0.1:0
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "dir: $(cat "$TEST_TMP/out")"
[ ! -e "$TEST_TMP/chunks" ] || fail "a refused dir: export created its directory"

# A listener that records what it is sent: had the daemon read the token file, the token
# would arrive here with the r3 handshake.
cat >"$TEST_TMP/capture.py" <<'EOF'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
s.settimeout(30)
data = b""
try:
    while True:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            while len(data) < 65536:
                d = c.recv(4096)
                if not d:
                    break
                data += d
        except OSError:
            pass
        c.close()
        open(sys.argv[1], "wb").write(data)
except OSError:
    pass
EOF
: >"$TEST_TMP/captured"
python3 "$TEST_TMP/capture.py" "$TEST_TMP/captured" "$TEST_TMP/capture.port" &
capture=$!
track $capture
wait_for_file "$TEST_TMP/capture.port" || fail "the capturing listener did not start"
port=$(cat "$TEST_TMP/capture.port")
uri="r3://127.0.0.1:$port/x?connect-timeout=2s&timeout=2s"
for param in token-file tls-ca tls-cert tls-key; do
	expect_r3ctl 4 --as $nobody --json export "$uri&$param=$TEST_TMP/secret" --listen 127.0.0.1:0
	[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "$param: $(cat "$TEST_TMP/out")"
	grep -q "may not use parameter '$param': it names a local file" "$TEST_TMP/out" || fail "$param: $(cat "$TEST_TMP/out")"
done
nothing_changed
[ ! -s "$TEST_TMP/captured" ] || fail "the daemon connected for a refused call"
# Root keeps full access: the daemon reads the token and sends it (the listener is no r3
# server, so the export fails), which shows the listener would have seen a member's.
expect_r3ctl 1 --timeout 30 export "$uri&token-file=$TEST_TMP/secret" --listen 127.0.0.1:0
for _ in $(seq 50); do grep -aq "secret-root-only-line" "$TEST_TMP/captured" && break; sleep 0.1; done
kill $capture 2>/dev/null || true
wait $capture 2>/dev/null || true
grep -aq "secret-root-only-line" "$TEST_TMP/captured" || fail "root's token-file was not read (the check above proves nothing)"

echo "== reading is allowed; a member by the database may change things, whatever its process's groups"
expect_r3ctl 0 --as $other ls
expect_r3ctl 0 --as $nobody export memory:1M --listen 127.0.0.1:0
expect_r3ctl 0 --as "$nobody:$nobody:$group" export memory:1M --listen 127.0.0.1:0
expect_r3ctl 0 exports
[ "$(grep -c '^[0-9]' "$TEST_TMP/out")" = 2 ] || fail "group members' exports missing"

echo "== others cannot stop an export either, and it keeps serving"
expect_r3ctl 4 --as $other --json unexport 1
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "Stop: $(cat "$TEST_TMP/out")"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports | grep -q '"/org/r3map/exports/1"' \
	|| fail "the export went away"
expect_r3ctl 0 --as $nobody unexport 1

daemon_alive
stop_r3mapd d
echo PASS
