#!/usr/bin/env bash
# Managed mounts and exports over D-Bus, on a host without nbd.ko: bad managed options are
# refused with precise errors before anything is opened or attached; a managed export runs
# the whole managed path (D-Bus -> region -> NBD -> nbdcopy/nbdsh) with Managed1, Sync(),
# bounded PropertiesChanged, r3ctl's progress and status, restore after a clean restart and
# after kill -9 (same cache: resumed), the push at Stop, and discard-dirty.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require gdbus nbdcopy nbdsh cmp unshare

nobody=65534
group=4242
getent passwd $nobody >/dev/null || skip "user $nobody is needed"
getent group $group >/dev/null && skip "gid $group exists here; this test wants its own"
state="$TEST_TMP/state"
echo "{\"access_group\": $group, \"state_dir\": \"$state\"}" >"$TEST_TMP/r3mapd.json"
with_group_members "r3map-it:x:$group:$(getent passwd $nobody | cut -d: -f1)"
# A directory the daemon sees read-only, as a cache path it cannot write.
mkdir -p "$TEST_TMP/ro"
r3mapd_namespace "mount --bind '$TEST_TMP/ro' '$TEST_TMP/ro' && mount -o remount,bind,ro '$TEST_TMP/ro'"
start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"

# write_and_hold URI PYTHON: runs PYTHON (nbdsh, handle h) on URI, then keeps the
# connection open until release_writer: a disconnect flushes, and a flush starts a push.
write_and_hold() {
	rm -f "$TEST_TMP/written" "$TEST_TMP/release"
	nbdsh -u "$1" -c "$2
import os, time
open('$TEST_TMP/written', 'w').write('x')
while not os.path.exists('$TEST_TMP/release'):
    time.sleep(0.05)
" >"$TEST_TMP/writer.log" 2>&1 &
	writer_pid=$!
	track "$writer_pid"
	wait_for_file "$TEST_TMP/written" || { cat "$TEST_TMP/writer.log"; fail "the writer did not write"; }
}
release_writer() {
	echo x >"$TEST_TMP/release"
	wait "$writer_pid" 2>/dev/null || true
}
# expect_bytes OFFSET LENGTH BYTE: what want.img (the remote as it should end up) holds.
expect_bytes() {
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); f.write(bytes([int(sys.argv[4])]) * int(sys.argv[3]))' \
		"$TEST_TMP/want.img" "$1" "$2" "$3"
}
managed_property() {
	busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Managed1 "$1"
}

nothing_listed() {
	busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListMounts | grep -qx 'ao 0' \
		|| fail "a refused Mount left a mount behind"
	busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports | grep -qx 'ao 0' \
		|| fail "a refused Export left an export behind"
	grep -q "attaching" "$TEST_TMP/d.log" && fail "an attach was tried: $(grep attaching "$TEST_TMP/d.log")"
	return 0
}

echo "== bad managed options: InvalidArgument naming the key, before anything is opened"
expect_error InvalidArgument "unknown option 'colour'" Mount memory:16M "{'managed': <true>, 'colour': <'red'>}"
expect_error InvalidArgument "option 'cache' goes with managed" Mount memory:16M "{'cache': <'c1'>}"
expect_error InvalidArgument "pull-workers: 'lots' is not a number from 1 to 256" \
	Mount memory:16M "{'managed': <true>, 'pull-workers': <'lots'>}"
expect_error InvalidArgument "pull-workers: '0' is not a number" Mount memory:16M "{'managed': <true>, 'pull-workers': <uint32 0>}"
expect_error InvalidArgument "option 'pull-workers': expected s" Mount memory:16M "{'managed': <true>, 'pull-workers': <2.5>}"
expect_error InvalidArgument "push-interval" Mount memory:16M "{'managed': <true>, 'push-interval': <'soon'>}"
expect_error InvalidArgument "order: 'random' is not linear, reverse or hot:FILE" \
	Mount memory:16M "{'managed': <true>, 'order': <'random'>}"
expect_error InvalidArgument "background: 'maybe' is not true or false" \
	Export memory:16M 127.0.0.1:0 "{'managed': <true>, 'background': <'maybe'>}"
expect_error InvalidArgument "managed option chunk-size, not chunk_size" \
	Mount memory:16M "{'managed': <true>, 'chunk_size': <uint64 65536>}"
expect_error InvalidArgument "managed does not go with read_only" Mount memory:16M "{'managed': <true>, 'read_only': <true>}"
expect_error InvalidArgument "managed does not go with read_only" \
	Export memory:16M 127.0.0.1:0 "{'managed': <true>, 'read_only': <true>}"
echo "== cache directories: unwritable, not a directory, malformed: InvalidArgument before the backend opens"
expect_error InvalidArgument "r3mapd cannot write in '$TEST_TMP/ro'" \
	Mount "file:$TEST_TMP/never.img?size=1M" "{'managed': <true>, 'cache': <'$TEST_TMP/ro/cache'>}"
touch "$TEST_TMP/plain"
expect_error InvalidArgument "Not a directory" Export memory:16M 127.0.0.1:0 "{'managed': <true>, 'cache': <'$TEST_TMP/plain/c'>}"
expect_error InvalidArgument "give memory, a NAME" Mount memory:16M "{'managed': <true>, 'cache': <'a/b'>}"
[ ! -e "$TEST_TMP/never.img" ] || fail "the backend was opened before the cache was checked"
[ ! -e "$TEST_TMP/ro/cache" ] || fail "a cache was created"
echo "== callers other than root: named caches only, no hot lists"
expect_r3ctl 4 --as $nobody:$nobody --json mount memory:16M --managed --cache "$TEST_TMP/c"
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "absolute cache: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as $nobody:$nobody --json export memory:16M --listen 127.0.0.1:0 --managed --order "hot:/etc/shadow"
[ "$(json_error)" = org.r3map.Error.NotPermitted ] || fail "hot list: $(cat "$TEST_TMP/out")"
nothing_listed
echo "== r3ctl checks the flags with the same parser (usage, exit 2)"
expect_r3ctl 2 mount memory:16M --managed --pull-workers lots
grep -q -- "--pull-workers: 'lots' is not a number" "$TEST_TMP/err" || fail "flag: $(cat "$TEST_TMP/err")"
expect_r3ctl 2 mount memory:16M --cache c1
grep -q -- "--cache goes with --managed" "$TEST_TMP/err" || fail "flag: $(cat "$TEST_TMP/err")"
expect_r3ctl 2 mount memory:16M --wait-local
nothing_listed

echo "== a valid managed Mount gets as far as the attach, which this host cannot do"
if [ -d /sys/module/nbd ]; then
	echo "(nbd is loaded here: the attach path is left to the vm suite)"
else
	expect_r3ctl 1 --json mount memory:16M --managed --cache m1
	[ "$(json_error)" = org.r3map.Error.NotSupported ] || fail "attach without nbd.ko: $(cat "$TEST_TMP/out")"
	grep -q "mount 1: attaching the managed region of memory:16M" "$TEST_TMP/d.log" || fail "no managed attach logged"
	[ ! -e "$state/mounts/1.json" ] || fail "a mount that never attached was journaled"
	busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListMounts | grep -qx 'ao 0' || fail "left listed"
fi

echo "== a managed export: the remote is pulled, Kind and Managed1 say so"
head -c 16M /dev/urandom >"$TEST_TMP/remote.img"
cp "$TEST_TMP/remote.img" "$TEST_TMP/want.img"
run_r3ctl --json export "file:$TEST_TMP/remote.img" --listen 127.0.0.1:0 --name disk --managed --cache c1 \
	--push-interval 1h --pull-workers 4
[ "$rc" -eq 0 ] || { cat "$TEST_TMP/out" "$TEST_TMP/err"; fail "managed export failed"; }
listen=$(json_field 'j["listen"]')
[ "$(json_field 'j["kind"]')" = managed ] || fail "kind: $(cat "$TEST_TMP/out")"
[ "$(json_field 'j["managed"]["cache_dir"]')" = "$state/caches/c1" ] || fail "cache dir: $(cat "$TEST_TMP/out")"
[ "$(json_field 'j["managed"]["options"]')" = "{'cache': 'c1', 'chunk-size': '65536', 'pull-workers': '4', 'push-interval': '1h'}" ] \
	|| fail "options: $(cat "$TEST_TMP/out")"
path=/org/r3map/exports/$(json_field 'j["id"]')
nbdcopy "nbd://$listen/disk" "$TEST_TMP/back"
cmp "$TEST_TMP/want.img" "$TEST_TMP/back" || fail "the export does not serve what the remote holds"
for _ in $(seq 100); do
	busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Managed1 State | grep -qx 's "idle"' && break
	sleep 0.1
done
busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Managed1 LocalBytes | grep -qx "t $((16 << 20))" \
	|| fail "not all local: $(busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Managed1 LocalBytes)"

echo "== writes are dirty until Sync(); PropertiesChanged at most once a second, only on change"
timeout 20 busctl --system monitor --match "type='signal',sender='org.r3map.r3mapd',path='$path',member='PropertiesChanged'" \
	>"$TEST_TMP/signals" 2>&1 &
monitor=$!
track "$monitor"
for _ in $(seq 100); do grep -q "Monitoring bus message stream" "$TEST_TMP/signals" && break; sleep 0.1; done
# Writes without a flush, spread over two seconds, on a connection that stays open.
write_and_hold "nbd://$listen/disk" '
import time
for i in range(8):
    h.pwrite(bytes([i + 1]) * 65536, i * (1 << 20))
    time.sleep(0.25)'
for i in $(seq 0 7); do expect_bytes $((i << 20)) 65536 $((i + 1)); done
sleep 2.5
dirty=$(managed_property DirtyBytes | cut -d' ' -f2)
[ "$dirty" -gt 0 ] || fail "nothing dirty after unflushed writes"
cmp -s "$TEST_TMP/want.img" "$TEST_TMP/remote.img" && fail "the remote has the writes before any push"
# A quiet second emits nothing.
count_before=$(grep -c 'Member=PropertiesChanged' "$TEST_TMP/signals" || true)
sleep 2.2
count_quiet=$(grep -c 'Member=PropertiesChanged' "$TEST_TMP/signals" || true)
kill "$monitor" 2>/dev/null || true
wait "$monitor" 2>/dev/null || true
echo "PropertiesChanged: $count_before while writing, $((count_quiet - count_before)) in a quiet second"
[ "$count_before" -ge 1 ] || { cat "$TEST_TMP/signals"; fail "no PropertiesChanged for the writes"; }
# About 5 s passed since the monitor started: at most one a second, plus one for the edge.
[ "$count_quiet" -le 7 ] || { cat "$TEST_TMP/signals"; fail "PropertiesChanged not bounded: $count_quiet"; }
[ "$count_quiet" -eq "$count_before" ] || fail "PropertiesChanged while nothing changed"
grep -q '"DirtyBytes"' "$TEST_TMP/signals" || fail "DirtyBytes change not signalled"
grep -q '"org.r3map.Managed1"' "$TEST_TMP/signals" || fail "not on Managed1"

echo "== r3ctl status --export shows local %, dirty, rates and the sync state"
expect_r3ctl 0 status --export 1
for row in "kind  *managed" "sync state  *syncing" "local  *16 MiB of 16 MiB (100%)" "dirty  *[1-9]" "pull rate" "push rate" \
	"cache  *$state/caches/c1" "option push-interval  *1h"; do
	grep -q "^$row" "$TEST_TMP/out" || { cat "$TEST_TMP/out"; fail "status row '$row'"; }
done

echo "== r3ctl --json sync: progress events, then done; the remote has everything"
expect_r3ctl 0 --json sync --export 1
python3 - "$TEST_TMP/out" <<'PY' || { cat "$TEST_TMP/out"; fail "sync events"; }
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert events[0]["event"] == "progress" and events[0]["operation"] == "sync", events
assert events[0]["total"] > 0, events
assert events[-1] == {"event": "done", "operation": "sync", "id": "1", "synced": True}, events
for e in events[:-1]:
    assert e["event"] == "progress" and e["done"] <= e["total"], e
    assert set(e) == {"event", "operation", "id", "done", "total", "rate", "eta_seconds"}, e
PY
cmp "$TEST_TMP/want.img" "$TEST_TMP/remote.img" || fail "Sync returned but the remote differs"
managed_property DirtyBytes | grep -qx 't 0' || fail "dirty after Sync"
release_writer
busctl --system call org.r3map.r3mapd "$path" org.r3map.Managed1 Sync || fail "Sync with nothing dirty"
expect_r3ctl 0 sync --export 1
grep -q "^synced export 1$" "$TEST_TMP/out" || fail "sync text: $(cat "$TEST_TMP/out")"
grep -q "r3ctl: sync 1: 100%" "$TEST_TMP/err" || fail "plain progress lines: $(cat "$TEST_TMP/err")"
expect_r3ctl 5 --json sync 7
expect_r3ctl 5 sync --export 7

echo "== a clean restart: the shutdown pushes, the export comes back on its address, resumed"
write_and_hold "nbd://$listen/disk" 'h.pwrite(b"\x55" * 65536, 9 << 20)'
expect_bytes $((9 << 20)) 65536 $((0x55))
stop_r3mapd d
release_writer
cmp "$TEST_TMP/want.img" "$TEST_TMP/remote.img" || fail "shutdown did not push"
[ -f "$state/exports/1.json" ] || fail "the managed export's spec is gone after a shutdown"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
for _ in $(seq 100); do nbdinfo --size "nbd://$listen/disk" >/dev/null 2>&1 && break; sleep 0.1; done
managed_property Resumed | grep -qx 'b true' || fail "not resumed"
managed_property PulledBytes | grep -qx 't 0' || fail "a resumed cache pulled again"
nbdcopy "nbd://$listen/disk" "$TEST_TMP/back"
cmp "$TEST_TMP/want.img" "$TEST_TMP/back" || fail "restored export serves other data"

echo "== kill -9 with dirty data: the journal brings it back, Sync pushes it"
write_and_hold "nbd://$listen/disk" 'h.pwrite(b"\x66" * (2 << 20), 12 << 20)'
expect_bytes $((12 << 20)) $((2 << 20)) $((0x66))
kill -KILL "$d_pid"
wait "$d_pid" 2>/dev/null || true
release_writer
cmp -s "$TEST_TMP/want.img" "$TEST_TMP/remote.img" && fail "the dirty data reached the remote before the kill"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
for _ in $(seq 100); do managed_property Resumed 2>/dev/null | grep -qx 'b true' && break; sleep 0.1; done
managed_property DirtyBytes | grep -qx "t $((2 << 20))" || fail "dirty after the restore: $(managed_property DirtyBytes)"
grep -q "resumed the cache $state/caches/c1: .* 32 dirty chunks" "$TEST_TMP/d.log" || fail "journal replay not logged"
expect_r3ctl 0 sync --export 1
cmp "$TEST_TMP/want.img" "$TEST_TMP/remote.img" || fail "the replayed dirty data was not pushed"

echo "== the cache is in use: a second managed export of it is Busy"
expect_r3ctl 1 --json export "file:$TEST_TMP/remote.img" --listen 127.0.0.1:0 --managed --cache c1
[ "$(json_error)" = org.r3map.Error.Busy ] || fail "cache in use: $(cat "$TEST_TMP/out")"

echo "== unexport pushes first, with progress, and forgets the export"
write_and_hold "nbd://$listen/disk" 'h.pwrite(b"\x77" * 65536, 0)'
expect_bytes 0 65536 $((0x77))
expect_r3ctl 0 --json unexport 1
release_writer
[ "$(tail -n1 "$TEST_TMP/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stopped"])')" = True ] \
	|| fail "unexport: $(cat "$TEST_TMP/out")"
cmp "$TEST_TMP/want.img" "$TEST_TMP/remote.img" || fail "unexport did not push"
[ ! -e "$state/exports/1.json" ] || fail "spec kept after unexport"

echo "== discard-dirty: the final push is skipped with a warning; the cache is resumed next time"
expect_r3ctl 0 export "file:$TEST_TMP/remote.img" --listen 127.0.0.1:0 --managed --cache c1 --push-interval 1h
listen2=$(cat "$TEST_TMP/out")
write_and_hold "nbd://$listen2" 'h.pwrite(b"\x88" * 65536, 0)'
busctl --system call org.r3map.r3mapd /org/r3map/exports/2 org.r3map.Export1 StopWithOptions 'a{sv}' 1 colour b true \
	>"$TEST_TMP/reply" 2>&1 && fail "StopWithOptions with an unknown key succeeded"
expect_r3ctl 0 unexport 2 --discard-dirty
release_writer
grep -q "export 2: stopping with discard-dirty" "$TEST_TMP/d.log" || fail "no warning for discard-dirty"
expect_r3ctl 0 --json export "file:$TEST_TMP/remote.img" --listen 127.0.0.1:0 --managed --cache c1
[ "$(json_field 'j["managed"]["resumed"]')" = True ] || fail "not resumed: $(cat "$TEST_TMP/out")"
[ "$(json_field 'j["id"]')" = 3 ] || fail "export ids were reused: $(cat "$TEST_TMP/out")"

stop_r3mapd d
echo PASS
