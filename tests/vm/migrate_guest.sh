#!/usr/bin/env bash
# Live migration of a mounted, written ext4 between two r3mapd: runs as root inside the test
# guest (run-guest.sh; dbus_vm_test.sh BUILD migrate_guest.sh), which has nbd.ko, veth and
# sch_netem (this host has no nbd.ko and no netem).
#   migrate_guest.sh OUT_DIR R3MAPD R3CTL ...
# Host A and host B are two network namespaces joined by veth, 10 ms each way (RTT 20 ms),
# each with its own r3mapd on its own private system bus. On A a file-backed mount carries
# ext4, written by a loop of fsync'ed records; A seeds that live mount (mount:ID, TLS); B
# pulls it onto its own /dev/nbdN. The link is cut for 3 s in pre-copy. At finalize A's hook
# stops the writer and unmounts; B takes ownership, its filesystem has every acknowledged
# record, and the loop goes on on B. The kernel's nbd netlink family exists in the initial
# network namespace only: both daemons attach through ioctls here. The log goes to
# OUT_DIR/guest.log, the daemons' next to it.
OUT=$1
export R3MAPD=$2 R3CTL=$3
source "$(dirname "$0")/daemon_guest_lib.sh" "$OUT"
require ip tc mount umount mkfs.ext4 e2fsck openssl dd
records="$here/record_log.py"
# The daemons' logs are kept next to guest.log, whatever happens.
keep_logs() {
	cp "$TEST_TMP/da.log" "$TEST_TMP/db.log" "$OUT/" 2>/dev/null
	_cleanup
}
trap keep_logs EXIT

step() { echo "== $(date +%T.%N | cut -c1-12) $*"; }

step "hosts a and b: network namespaces joined by veth, netem 10 ms each way"
ip link set lo up
ip netns add a && ip netns add b || fail "ip netns add"
ip link add va type veth peer name vb || fail "veth"
ip link set va netns a && ip link set vb netns b
ip -n a addr add 10.9.0.1/24 dev va && ip -n a link set va up && ip -n a link set lo up
ip -n b addr add 10.9.0.2/24 dev vb && ip -n b link set vb up && ip -n b link set lo up
tc -n a qdisc add dev va root netem delay 10ms || fail "netem on a"
tc -n b qdisc add dev vb root netem delay 10ms || fail "netem on b"
ip -n b route get 10.9.0.1 | grep -q "dev vb" || fail "b has no route to a"

# Each host: its own bus, and r3mapd in its namespace (ip netns exec: a mount namespace of
# its own too; the filesystems mounted here propagate in, as under systemd).
mount --make-rshared /
for h in a b; do
	"$R3MAP_SOURCE_DIR/scripts/private-system-bus.sh" --foreground "$TEST_TMP/bus-$h" \
		"$R3MAP_DBUS_DIR/org.r3map.r3mapd.conf" >"$TEST_TMP/bus-$h.address" &
	track $!
	wait_for_file "$TEST_TMP/bus-$h.address" || fail "bus $h did not start"
	printf '#!/bin/sh\nexec ip netns exec %s %q "$@"\n' "$h" "$R3MAPD" >"$TEST_TMP/r3mapd-$h"
	chmod +x "$TEST_TMP/r3mapd-$h"
done
bus_a=$(sed -n 1p "$TEST_TMP/bus-a.address") bus_b=$(sed -n 1p "$TEST_TMP/bus-b.address")
chmod 755 "$TEST_TMP"
on() { # on HOST FUNCTION ARGS...: with HOST's bus
	local h=$1
	shift
	local bus=bus_$h
	DBUS_SYSTEM_BUS_ADDRESS=${!bus} "$@"
}
R3MAPD="$TEST_TMP/r3mapd-a" on a start_r3mapd da
R3MAPD="$TEST_TMP/r3mapd-b" on b start_r3mapd db

step "on a: a file-backed mount with ext4, written by fsync'ed records"
on a expect_r3ctl 0 --json mount "file:$TEST_TMP/a.img?size=96M"
dev_a=$(json_field 'j["device"]') mount_a=$(json_field 'j["id"]')
[[ "$dev_a" =~ ^/dev/nbd[0-9]+$ ]] || fail "mount on a printed $(cat "$TEST_TMP/out")"
mkfs.ext4 -q -F "$dev_a" || fail "mkfs.ext4 $dev_a"
mkdir -p "$TEST_TMP/ma" "$TEST_TMP/mb"
mount "$dev_a" "$TEST_TMP/ma" || fail "mount $dev_a"
# Files the writer does not touch: dirtied once, before the seed.
head -c 8M /dev/urandom >"$TEST_TMP/ma/static"
static_sum=$(md5sum <"$TEST_TMP/ma/static")
"$records" write "$TEST_TMP/ma/log" 0 >"$TEST_TMP/acked" &
writer=$!
track $writer
for _ in $(seq 100); do [ -s "$TEST_TMP/acked" ] && break; sleep 0.1; done
[ -s "$TEST_TMP/acked" ] || fail "the writer acknowledged nothing"

step "a seeds the live mount (mount:$mount_a) over TLS; its writes are tracked from now on"
"$R3MAP_SOURCE_DIR/tests/support/make_test_certs.sh" "$TEST_TMP/certs"
cat >"$TEST_TMP/suspend.sh" <<HOOK
#!/bin/sh
# The app's pause: the test stops the writer and unmounts, then says so.
touch "$TEST_TMP/suspend-asked"
for i in \$(seq 400); do [ -e "$TEST_TMP/suspended" ] && exit 0; sleep 0.05; done
exit 1
HOOK
chmod +x "$TEST_TMP/suspend.sh"
on a expect_r3ctl 0 --json migrate seed "mount:$mount_a" --listen 10.9.0.1:0 --tls-cert "$TEST_TMP/certs/server.pem" \
	--tls-key "$TEST_TMP/certs/server.key" --on-finalize "$TEST_TMP/suspend.sh"
seed=$(json_field 'j["id"]') uri=$(json_field 'j["uri"]')
[[ "$uri" == r3://10.9.0.1:* ]] || fail "seed printed $(cat "$TEST_TMP/out")"
on a expect_r3ctl 1 --json unmount "$dev_a"
[ "$(json_error)" = org.r3map.Error.Busy ] || fail "unmount of a seeded mount: $(cat "$TEST_TMP/out")"
on a expect_r3ctl 1 --json migrate seed "mount:$mount_a" --listen 10.9.0.1:0 --tls-cert "$TEST_TMP/certs/server.pem" \
	--tls-key "$TEST_TMP/certs/server.key"
[ "$(json_error)" = org.r3map.Error.Busy ] || fail "a second seed of the mount: $(cat "$TEST_TMP/out")"

step "b pulls it onto its own device, manual finalize, pre-copy rounds while the writer goes on"
on b expect_r3ctl 0 --json migrate pull "$uri?tls=on&tls-ca=$TEST_TMP/certs/ca.pem&tls-name=localhost" \
	--finalize manual --downtime 300ms
pull=$(json_field 'j["id"]') dev_b=$(json_field 'j["device"]')
[[ "$dev_b" =~ ^/dev/nbd[0-9]+$ ]] && [ "$dev_b" != "$dev_a" ] || fail "pull printed $(cat "$TEST_TMP/out")"
[ "$(cat "/sys/block/${dev_b#/dev/}/size")" = $((96 << 11)) ] || fail "$dev_b is not 96 MiB"
wait_phase() { # wait_phase HOST ID PHASE... : until the migration is in one of them
	local h=$1 id=$2 i p
	shift 2
	for i in $(seq 600); do
		on "$h" run_r3ctl --json migrate status "$id"
		p=$(json_field 'j["phase"]')
		for want in "$@"; do [ "$p" = "$want" ] && return 0; done
		[ "$p" = failed ] && fail "migration $id on $h failed: $(cat "$TEST_TMP/out")"
		sleep 0.2
	done
	fail "migration $id on $h never reached $*: $(cat "$TEST_TMP/out")"
}
wait_phase b "$pull" pre-copy
on b run_r3ctl --json migrate status "$pull"
echo "b: $(json_field '"round %d, %d bytes pulled" % (j["round"], j["transferred_bytes"])')"

step "the link is cut for 3 s in pre-copy"
tc -n b qdisc change dev vb root netem delay 10ms loss 100%
tc -n a qdisc change dev va root netem delay 10ms loss 100%
sleep 3
tc -n b qdisc change dev vb root netem delay 10ms
tc -n a qdisc change dev va root netem delay 10ms
round_before=$(json_field 'j["round"]')
for _ in $(seq 300); do
	on b run_r3ctl --json migrate status "$pull"
	[ "$(json_field 'j["phase"]')" = pre-copy ] && [ "$(json_field 'j["round"]')" -gt "$round_before" ] && break
	[ "$(json_field 'j["phase"]')" = failed ] && fail "the cut failed the migration: $(cat "$TEST_TMP/out")"
	sleep 0.2
done
[ "$(json_field 'j["round"]')" -gt "$round_before" ] || fail "no round after the cut: $(cat "$TEST_TMP/out")"
echo "b after the cut: $(json_field '"round %d, %d bytes pulled" % (j["round"], j["transferred_bytes"])')"
grep -h "resum\|reconnect" "$TEST_TMP/db.log" | tail -2 || true

step "finalize: a's hook stops the writer and unmounts; b owns the region"
on b run_r3ctl --json migrate finalize "$pull" --wait >/dev/null &
finalizer=$!
for _ in $(seq 600); do [ -e "$TEST_TMP/suspend-asked" ] && break; sleep 0.05; done
[ -e "$TEST_TMP/suspend-asked" ] || fail "a's finalize hook never ran"
kill -TERM $writer
wait $writer
umount "$TEST_TMP/ma" || fail "umount on a"
touch "$TEST_TMP/suspended"
wait $finalizer || fail "finalize --wait failed: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
on b expect_r3ctl 0 --json migrate status "$pull"
[ "$(json_field 'j["phase"]')" = complete ] && [ "$(json_field 'j["owner"]')" = True ] \
	|| fail "b after finalize: $(cat "$TEST_TMP/out")"
echo "b: downtime $(json_field 'j["measured_downtime_us"]') us, $(json_field 'j["transferred_bytes"]') bytes pulled, rounds $(json_field 'j["round"]')"
acked_a=$(wc -l <"$TEST_TMP/acked")
echo "records acknowledged on a: $acked_a"
[ "$acked_a" -ge 10 ] || fail "too few records on a to prove anything"

step "a's device is read-only now: a write fails, nothing reaches a's file"
dd if=/dev/zero of="$dev_a" bs=4096 count=1 seek=100 oflag=direct conv=notrunc status=none 2>"$TEST_TMP/dd.err" \
	&& fail "a write to $dev_a after the handover succeeded"
echo "a's device refused: $(head -1 "$TEST_TMP/dd.err")"

step "b mounts the filesystem: every acknowledged record, the static file intact"
mount "$dev_b" "$TEST_TMP/mb" || fail "mount $dev_b"
"$records" verify "$TEST_TMP/mb/log" "$TEST_TMP/acked" || fail "records lost in the move"
[ "$(md5sum <"$TEST_TMP/mb/static")" = "$static_sum" ] || fail "the static file differs on b"

step "the loop goes on on b"
next=$(( $(tail -1 "$TEST_TMP/acked") + 1 ))
"$records" write "$TEST_TMP/mb/log" "$next" 200 >>"$TEST_TMP/acked" || fail "writing on b"
"$records" verify "$TEST_TMP/mb/log" "$TEST_TMP/acked" || fail "records on b"
umount "$TEST_TMP/mb"
e2fsck -fn "$dev_b" >"$TEST_TMP/fsck" 2>&1 || { cat "$TEST_TMP/fsck"; fail "e2fsck on b found damage"; }

step "cleanup: b keeps a device while mounted, then lets it go; a's mount goes after its seeder"
mount "$dev_b" "$TEST_TMP/mb"
on b expect_r3ctl 1 --json migrate cancel "$pull"
[ "$(json_error)" = org.r3map.Error.Busy ] || fail "cancel under a mounted filesystem: $(cat "$TEST_TMP/out")"
umount "$TEST_TMP/mb"
on b expect_r3ctl 0 migrate cancel "$pull"
for _ in $(seq 50); do dev_free "$dev_b" && break; sleep 0.1; done
dev_free "$dev_b" || fail "$dev_b still connected after cancel"
on a expect_r3ctl 0 migrate cancel "$seed"
on a expect_r3ctl 0 unmount "$dev_a"
dev_free "$dev_a" || fail "$dev_a still connected after unmount"
on a stop_r3mapd da
on b stop_r3mapd db
grep -h "error" "$TEST_TMP/da.log" "$TEST_TMP/db.log" | grep -v "no memory regions" | head -5 || true
echo PASS
