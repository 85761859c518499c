#!/usr/bin/env bash
# Push sync through r3mapd (issue 15): the daemon serves a directory (ServeSync) and pushes a
# 32 MiB file to it (StartSync); random chunks change, SyncNow sends only those, the copy
# equals the source (sha256) and the Sync1 properties moved. Bad input gets a clean D-Bus
# error naming what is wrong and the daemon goes on; Stop removes the object.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require gdbus sha256sum

nobody=65534
other=1    # has a user entry, is not in the group
group=4242 # the daemon's access group here; nobody is its member
have_users=1
getent passwd $nobody >/dev/null && getent passwd $other >/dev/null || have_users=0
getent group $group >/dev/null && have_users=0
echo "{\"access_group\": $group}" >"$TEST_TMP/r3mapd.json"
[ "$have_users" = 1 ] && with_group_members "r3map-it:x:$group:$(getent passwd $nobody | cut -d: -f1)"

# Everyone reaches the daemon: its own checks are what this test looks at.
start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"

# EXPR on the last JSON object r3ctl printed: after progress events, one per line, it is
# the last line; alone, it is the whole (pretty) output.
last() {
	python3 -c '
import json, sys
text = open(sys.argv[1]).read()
try:
    j = json.loads(text)
except ValueError:
    j = json.loads(text.strip().split("\n")[-1])
print(eval(sys.argv[2]))' "$TEST_TMP/out" "$1"
}
sync_property() {
	busctl --system get-property org.r3map.r3mapd "/org/r3map/syncs/$1" org.r3map.Sync1 "$2" | cut -d' ' -f2-
}

echo "== serve a directory, push a 32 MiB file to it"
mkdir "$TEST_TMP/dst"
expect_r3ctl 0 --json sync serve --dir "$TEST_TMP/dst" --listen 127.0.0.1:0
serve_id=$(last 'j["id"]')
listen=$(last 'j["listen"]')
[ "$(last 'j["role"]')" = serve ] || fail "serve: $(cat "$TEST_TMP/out")"
busctl --system introspect --xml-interface org.r3map.r3mapd "/org/r3map/syncs/$serve_id" >"$TEST_TMP/sync.xml"
python3 "$(dirname "$0")/compare_introspection.py" "$R3MAP_DBUS_DIR/org.r3map.Sync1.xml" "$TEST_TMP/sync.xml" \
	|| fail "Sync1 differs from the XML"
head -c 32M /dev/urandom >"$TEST_TMP/src"
expect_r3ctl 0 --json sync start "$TEST_TMP/src" "r3://$listen/copy"
push_id=$(last 'j["id"]')
[ "$(last 'j["state"]')" = idle ] || fail "first round: $(cat "$TEST_TMP/out")"
grep -q '"event":"progress"' "$TEST_TMP/out" || fail "no progress events: $(cat "$TEST_TMP/out")"
[ "$(sha256sum <"$TEST_TMP/src")" = "$(sha256sum <"$TEST_TMP/dst/copy")" ] || fail "the copy differs after the first round"
[ "$(sync_property "$push_id" BytesSent)" = $((32 << 20)) ] || fail "BytesSent: $(sync_property "$push_id" BytesSent)"
[ "$(sync_property "$push_id" ChunksChanged)" = 32 ] || fail "ChunksChanged: $(sync_property "$push_id" ChunksChanged)"
[ "$(sync_property "$push_id" Generation)" = 1 ] || fail "Generation: $(sync_property "$push_id" Generation)"
last_sync=$(sync_property "$push_id" LastSync)
[ "$last_sync" -gt 0 ] || fail "LastSync is 0"
[ "$(sync_property "$serve_id" BytesSent)" = $((32 << 20)) ] || fail "serve received: $(sync_property "$serve_id" BytesSent)"

echo "== change random chunks; SyncNow sends only those"
python3 - "$TEST_TMP/src" <<'PY'
import os, random, sys
with open(sys.argv[1], "r+b") as f:
    for chunk in random.sample(range(32), 5):
        f.seek(chunk * (1 << 20) + random.randrange(0, (1 << 20) - 4096))
        f.write(os.urandom(4096))
PY
sleep 1 # LastSync counts seconds
expect_r3ctl 0 --json sync now "$push_id"
[ "$(sha256sum <"$TEST_TMP/src")" = "$(sha256sum <"$TEST_TMP/dst/copy")" ] || fail "the copy differs after SyncNow"
[ "$(last 'j["generation"]')" = 2 ] || fail "generation: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["chunks_changed"]')" = 37 ] || fail "chunks changed: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["bytes_sent"]')" = $((37 << 20)) ] || fail "bytes sent: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["destinations"][0]["lag"]')" = 0 ] || fail "lag: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["destinations"][0]["acked_generation"]')" = 2 ] || fail "acked: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["destinations"][0]["state"]')" = ok ] || fail "destination state: $(tail -n1 "$TEST_TMP/out")"
[ "$(sync_property "$push_id" LastSync)" -gt "$last_sync" ] || fail "LastSync did not move"
busctl --system get-property org.r3map.r3mapd "/org/r3map/syncs/$push_id" org.r3map.Sync1 Destinations \
	| grep -q "\"r3://$listen/copy\" 2 0 $((37 << 20)) \"ok\" \"\"" || fail "Destinations: $(sync_property "$push_id" Destinations)"

echo "== a hub fans a push out; a push on an interval converges without SyncNow"
mkdir "$TEST_TMP/cache"
expect_r3ctl 0 --json sync hub --listen 127.0.0.1:0 --cache "$TEST_TMP/cache" "r3://$listen"
hub_id=$(last 'j["id"]')
hub_listen=$(last 'j["listen"]')
head -c 4M /dev/urandom >"$TEST_TMP/small"
expect_r3ctl 0 --json sync start "$TEST_TMP/small" --hub "$hub_listen" --interval 300ms
via_id=$(last 'j["id"]')
[ "$(last 'j["interval_ms"]')" = 300 ] || fail "interval: $(tail -n1 "$TEST_TMP/out")"
converged() {
	local i
	for i in $(seq 100); do
		cmp -s "$1" "$2" && return 0
		sleep 0.1
	done
	return 1
}
converged "$TEST_TMP/small" "$TEST_TMP/dst/small" || fail "the hub did not fan the push out"
head -c 64K /dev/urandom | dd of="$TEST_TMP/small" bs=64K seek=7 conv=notrunc status=none
converged "$TEST_TMP/small" "$TEST_TMP/dst/small" || fail "the interval push did not converge"
expect_r3ctl 0 --json sync status "$hub_id"
[ "$(json_field 'j["role"]')" = hub ] || fail "hub status: $(cat "$TEST_TMP/out")"
[ "$(json_field 'j["destinations"][0]["state"]')" = ok ] || fail "hub destination: $(cat "$TEST_TMP/out")"
[ "$(json_field 'j["generation"]')" -ge 2 ] || fail "hub generation: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 sync stop "$via_id"
expect_r3ctl 0 sync stop "$hub_id"

if loop=$(losetup --find --show "$TEST_TMP/small" 2>/dev/null); then
	echo "== a block device as the source ($loop)"
	expect_r3ctl 0 --json sync start "$loop" "r3://$listen/blk"
	blk_id=$(last 'j["id"]')
	cmp "$TEST_TMP/small" "$TEST_TMP/dst/blk" || { losetup -d "$loop"; fail "the block device's copy differs"; }
	[ "$(last 'j["source_bytes"]')" = $((4 << 20)) ] || { losetup -d "$loop"; fail "device size: $(cat "$TEST_TMP/out")"; }
	expect_r3ctl 0 sync stop "$blk_id"
	losetup -d "$loop"
else
	echo "(no loop device here: the block-device source is not tried)"
fi

echo "== a destination that is down: the round reports it, lag grows, the daemon goes on"
expect_r3ctl 1 --json sync start "$TEST_TMP/src" r3://127.0.0.1:1/x "r3://$listen/copy2"
down_id=$(last 'j["id"]')
[ "$(last 'j["state"]')" = degraded ] || fail "state with a dead destination: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["destinations"][0]["state"]')" = failed ] || fail "dead destination: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["destinations"][0]["lag"]')" = 1 ] || fail "dead lag: $(tail -n1 "$TEST_TMP/out")"
[ "$(last 'j["destinations"][1]["state"]')" = ok ] || fail "the live destination was held up: $(tail -n1 "$TEST_TMP/out")"
cmp "$TEST_TMP/src" "$TEST_TMP/dst/copy2" || fail "the live destination's copy differs"
expect_r3ctl 0 sync stop "$down_id"

echo "== a receiver that stalls mid-round (SIGSTOP) does not hold up Stop"
mkdir "$TEST_TMP/stalled"
"$R3SYNC" serve --listen 127.0.0.1:0 --dir "$TEST_TMP/stalled" >"$TEST_TMP/r3sync.out" 2>&1 &
stalled=$!
track "$stalled"
wait_for_file "$TEST_TMP/r3sync.out" || fail "r3sync serve did not start"
stalled_addr=$(sed -n 's/^listening //p' "$TEST_TMP/r3sync.out")
expect_r3ctl 0 --json sync start "$TEST_TMP/src" "r3://$stalled_addr/c"
stall_id=$(last 'j["id"]')
head -c 16M /dev/urandom | dd of="$TEST_TMP/src" conv=notrunc status=none
kill -STOP "$stalled"
"$R3CTL" sync now "$stall_id" >"$TEST_TMP/now.out" 2>&1 &
now_pid=$!
# Stop once the daemon took the call in (it logs the admission), not after a guess.
for _ in $(seq 200); do grep -q "SyncNow sync $stall_id by" "$TEST_TMP/d.log" && break; sleep 0.05; done
grep -q "SyncNow sync $stall_id by" "$TEST_TMP/d.log" || fail "SyncNow never reached the daemon: $(cat "$TEST_TMP/now.out")"
sleep 0.5
started=$(date +%s)
timeout 20 "$R3CTL" sync stop "$stall_id" || fail "Stop of a push to a stalled receiver did not return"
[ $(($(date +%s) - started)) -le 5 ] || fail "Stop took $(($(date +%s) - started)) s"
kill -CONT "$stalled"
now_rc=0
wait "$now_pid" || now_rc=$?
# The round fails (1) or, if Stop won the race to the entry, the sync is gone (5): either
# way a clean answer, not a hang.
[ "$now_rc" -eq 1 ] || [ "$now_rc" -eq 5 ] || fail "sync now during Stop exited $now_rc: $(cat "$TEST_TMP/now.out")"
daemon_alive

echo "== listed by sync status, ls and status --sync"
expect_r3ctl 0 --json sync status
[ "$(json_field 'len(j)')" = 2 ] || fail "sync status: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 ls
grep -q "^$push_id  *push  *idle" "$TEST_TMP/out" || fail "ls: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 --json ls --syncs
[ "$(json_field 'j[1]["role"]')" = push ] || fail "ls --syncs: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 --json status --sync "$serve_id"
[ "$(json_field 'j["rounds"]')" -ge 5 ] || fail "status --sync: $(cat "$TEST_TMP/out")"

echo "== bad input is refused, naming what is wrong"
expect_error InvalidArgument "No such file" StartSync "$TEST_TMP/missing" "['r3://$listen/x']" "{}"
expect_error InvalidArgument "expected an absolute path" StartSync relative "['r3://$listen/x']" "{}"
expect_error NotFound "no mount 3" StartSync 3 "['r3://$listen/x']" "{}"
expect_error NotFound "no mount 4" StartSync /org/r3map/mounts/4 "['r3://$listen/x']" "{}"
expect_error InvalidArgument "not a regular file or a block device" StartSync /dev/null "['r3://$listen/x']" "{}"
expect_error InvalidArgument "expected r3://HOST:PORT[/NAME]" StartSync "$TEST_TMP/src" "['nbd://127.0.0.1:1/x']" "{}"
expect_error InvalidArgument "unknown parameter 'colour'" StartSync "$TEST_TMP/src" "['r3://$listen/x?colour=red']" "{}"
expect_error InvalidArgument "no destination" StartSync "$TEST_TMP/src" "@as []" "{}"
expect_error InvalidArgument "option 'interval'" StartSync "$TEST_TMP/src" "['r3://$listen/x']" "{'interval': <uint64 0>}"
expect_error InvalidArgument "option 'interval'" StartSync "$TEST_TMP/src" "['r3://$listen/x']" "{'interval': <'400d'>}"
expect_error InvalidArgument "option 'interval'" StartSync "$TEST_TMP/src" "['r3://$listen/x']" "{'interval': <'soon'>}"
expect_error InvalidArgument "chunk_size" StartSync "$TEST_TMP/src" "['r3://$listen/x']" "{'chunk_size': <uint64 3000>}"
expect_error InvalidArgument "unknown option 'colour'" StartSync "$TEST_TMP/src" "['r3://$listen/x']" "{'colour': <'red'>}"
expect_error InvalidArgument "No such file" ServeSync 127.0.0.1:0 "$TEST_TMP/nodir" "{}"
expect_error InvalidArgument "not a directory" ServeSync 127.0.0.1:0 "$TEST_TMP/src" "{}"
expect_error InvalidArgument "loopback" ServeSync 0.0.0.0:0 "$TEST_TMP/dst" "{}"
expect_error InvalidArgument "expected journal or rename" ServeSync 127.0.0.1:0 "$TEST_TMP/dst" "{'apply': <'later'>}"
expect_error InvalidArgument "listen is empty" ServeSync "" "$TEST_TMP/dst" "{}"
expect_error AddressInUse "" ServeSync "$listen" "$TEST_TMP/dst" "{}"
expect_error InvalidArgument "at least one destination" StartSyncHub 127.0.0.1:0 "$TEST_TMP/dst" "@as []" "{}"
expect_error InvalidArgument "expected r3://HOST:PORT" StartSyncHub 127.0.0.1:0 "$TEST_TMP/dst" "['x']" "{}"
expect_r3ctl 5 sync stop 99
expect_r3ctl 5 sync now 99
expect_r3ctl 1 --json sync now "$serve_id"
[ "$(json_error)" = org.r3map.Error.NotSupported ] || fail "SyncNow on a serve: $(cat "$TEST_TMP/out")"
expect_r3ctl 2 sync start "$TEST_TMP/src"

if [ "$have_users" = 1 ]; then
	echo "== callers: not in the group is refused; in it, still no files read or written as root"
	expect_r3ctl 4 --as $other --json sync start "$TEST_TMP/src" "r3://$listen/x"
	[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "outsider: $(cat "$TEST_TMP/out")"
	expect_r3ctl 4 --as $nobody --json sync start "$TEST_TMP/src" "r3://$listen/x"
	[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "member start: $(cat "$TEST_TMP/out")"
	expect_r3ctl 4 --as $nobody --json sync serve --dir "$TEST_TMP/dst" --listen 127.0.0.1:0
	[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "member serve: $(cat "$TEST_TMP/out")"
	expect_r3ctl 4 --as $other sync stop "$push_id"
	expect_r3ctl 4 --as $other sync now "$push_id"
fi
daemon_alive

echo "== stop removes the objects"
expect_r3ctl 0 sync stop "$push_id"
expect_r3ctl 0 sync stop "$serve_id"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListSyncs | grep -qx 'ao 0' \
	|| fail "syncs left: $(busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListSyncs)"
expect_r3ctl 5 sync status "$push_id"
daemon_alive
stop_r3mapd d
echo PASS
