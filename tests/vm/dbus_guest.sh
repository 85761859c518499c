#!/usr/bin/env bash
# r3mapd end to end with the kernel: runs as root inside the test guest (run-guest.sh),
# which has nbd.ko loaded and the host's root file system read-only.
#   dbus_guest.sh OUT_DIR R3MAPD R3CTL MMAP_PATTERN NBD_NETLINK_CHECK R3SERVE
# A private dbus-daemon with the project's policy, r3mapd on it, and an unprivileged user
# r3user in group r3map who gets the device only as a descriptor passed by the daemon.
# The log goes to OUT_DIR/guest.log.
OUT=$1
export R3MAPD=$2 R3CTL=$3 MMAP_PATTERN=$4 NBD_NETLINK_CHECK=$5 R3SERVE=$6
source "$(dirname "$0")/daemon_guest_lib.sh" "$OUT"
require mount dd cmp mkfs.ext4 e2fsck md5sum

step() { echo "== $*"; }

step "a user r3user in group r3map (the guest's /etc is the host's, read-only: overlay two files)"
mkdir -p "$TEST_TMP/etc"
cp /etc/passwd /etc/group "$TEST_TMP/etc/"
grep -q '^r3map:' /etc/group && fail "the host already has a group r3map; this test wants its own"
echo 'r3user:x:4243:4243:r3map test user:/tmp:/bin/sh' >>"$TEST_TMP/etc/passwd"
echo 'r3user:x:4243:' >>"$TEST_TMP/etc/group"
echo 'r3map:x:4242:r3user' >>"$TEST_TMP/etc/group"
mount --bind "$TEST_TMP/etc/passwd" /etc/passwd
mount --bind "$TEST_TMP/etc/group" /etc/group
[ "$(id -Gn r3user)" = "r3user r3map" ] || fail "r3user's groups: $(id -Gn r3user)"
as_user=(setpriv --reuid=r3user --regid=r3user --init-groups)

start_bus
# As under the unit's ProtectKernelTunables=yes: attaching must not need to write /sys.
# The daemon's mount namespace sees the filesystems mounted later, as a service's does
# under systemd, which makes every mount shared at boot.
mount --make-rshared /
protect_kernel_tunables
start_r3mapd d

step "r3ctl mount memory:128M → /dev/nbdN, ready"
expect_r3ctl 0 mount memory:128M
dev=$(cat "$TEST_TMP/out")
[[ "$dev" =~ ^/dev/nbd[0-9]+$ ]] || fail "mount printed '$dev'"
[ "$(cat "/sys/block/${dev#/dev/}/size")" = 262144 ] || fail "$dev is not 128 MiB"
expect_r3ctl 0 --json status "$dev"
[ "$(json_field 'j["state"]')" = ready ] || fail "state $(json_field 'j["state"]')"
id=$(json_field 'j["id"]')
expect_r3ctl 0 ls
cp "$TEST_TMP/out" "$OUT/r3ctl-ls.txt"
busctl --system introspect org.r3map.r3mapd "/org/r3map/mounts/$id" >"$OUT/busctl-introspect-mount.txt"
busctl --system introspect org.r3map.r3mapd /org/r3map >"$OUT/busctl-introspect-manager.txt"

step "Mount1 on a live mount matches org.r3map.Mount1.xml"
busctl --system introspect --xml-interface org.r3map.r3mapd "/org/r3map/mounts/$id" >"$TEST_TMP/mount.xml"
python3 "$here/../integration/daemon/compare_introspection.py" "$R3MAP_DBUS_DIR/org.r3map.Mount1.xml" \
	"$TEST_TMP/mount.xml" || fail "Mount1 differs from the XML"

step "r3user cannot open $dev itself"
"${as_user[@]}" dd if="$dev" of=/dev/null bs=4096 count=1 2>"$TEST_TMP/dd.err" && fail "r3user read $dev directly"
grep -q "Permission denied" "$TEST_TMP/dd.err" || fail "unexpected: $(cat "$TEST_TMP/dd.err")"

step "OpenFd to r3user's process: mmap MAP_SHARED, write a pattern, msync"
offset=$((1 << 20)) length=$((4 << 20)) seed=42
expect_r3ctl 0 --as "$(id -u r3user):$(id -g r3user):4242" open "$id" -- "$MMAP_PATTERN" write $offset $length $seed
grep -q "wrote $length bytes at $offset as uid 4243" "$TEST_TMP/out" || fail "writer: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"

step "the pattern is there: read back through the device, and through a new descriptor"
"$MMAP_PATTERN" print $offset $length $seed >"$TEST_TMP/expected"
dd if="$dev" of="$TEST_TMP/actual" bs=1M skip=1 count=4 iflag=direct status=none
cmp "$TEST_TMP/expected" "$TEST_TMP/actual" || fail "the device does not hold the pattern"
"${as_user[@]}" "$R3CTL" open "$dev" --read-only -- "$MMAP_PATTERN" verify $offset $length $seed >"$TEST_TMP/out" 2>&1 \
	|| fail "verify through a read-only descriptor: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 --json status "$id"
[ "$(json_field 'j["statistics"]["bytes_written"] >= 4 << 20')" = True ] || fail "statistics: $(cat "$TEST_TMP/out")"

step "what the daemon refuses: write access to a read-only mount, nobody outside the group"
expect_r3ctl 0 mount memory:16M --read-only
rodev=$(cat "$TEST_TMP/out")
expect_r3ctl 1 --json open "$rodev" -- true
[ "$(json_error)" = org.r3map.Error.ReadOnly ] || fail "read-only: $(cat "$TEST_TMP/out")"
expect_r3ctl 4 --as 65534 mount memory:1M
expect_r3ctl 0 unmount "$rodev"

step "StateChanged and PropertiesChanged when unmounting; r3ctl unmount frees the device"
timeout 30 busctl --system monitor --match "type='signal',sender='org.r3map.r3mapd'" >"$TEST_TMP/signals" 2>&1 &
monitor=$!
track $monitor
# Under TCG busctl takes a while to subscribe: wait until it says it is listening.
for _ in $(seq 100); do grep -q "Monitoring bus message stream" "$TEST_TMP/signals" && break; sleep 0.1; done
grep -q "Monitoring bus message stream" "$TEST_TMP/signals" || fail "busctl monitor did not start"
expect_r3ctl 0 unmount "$dev"
grep -q "unmounted $dev (mount $id)" "$TEST_TMP/out" || fail "unmount said: $(cat "$TEST_TMP/out")"
dev_free "$dev" || fail "$dev is still connected"
for _ in $(seq 50); do grep -q InterfacesRemoved "$TEST_TMP/signals" && break; sleep 0.1; done
kill $monitor 2>/dev/null || true
grep -q 'Member=StateChanged' "$TEST_TMP/signals" || { cat "$TEST_TMP/signals"; fail "no StateChanged"; }
grep -q 'STRING "unmounting"' "$TEST_TMP/signals" || fail "StateChanged did not say unmounting"
grep -q 'Member=InterfacesRemoved' "$TEST_TMP/signals" || fail "no InterfacesRemoved"
expect_r3ctl 0 --json ls
[ "$(cat "$TEST_TMP/out")" = "[]" ] || fail "mounts left: $(cat "$TEST_TMP/out")"

step "a device disconnected from outside turns the mount failed; Unmount cleans up"
expect_r3ctl 0 mount memory:8M
xdev=$(cat "$TEST_TMP/out")
"$NBD_NETLINK_CHECK" --disconnect "${xdev#/dev/nbd}" || fail "external DISCONNECT"
for _ in $(seq 100); do
	run_r3ctl --json status "$xdev"
	[ "$(json_field 'j["state"]')" = failed ] && break
	sleep 0.1
done
[ "$(json_field 'j["state"]')" = failed ] || fail "state after an external disconnect: $(cat "$TEST_TMP/out")"
busctl --system get-property org.r3map.r3mapd "$(json_field 'j["path"]')" org.r3map.Mount1 State | grep -qx 's "failed"' \
	|| fail "State property"
expect_r3ctl 1 --json open "$xdev" -- true
[ "$(json_error)" = org.r3map.Error.Failed ] || fail "OpenFd on a failed mount: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 unmount "$xdev"
dev_free "$xdev" || fail "$xdev not free after unmounting the failed mount"
grep -q "lost its connection to the server" "$TEST_TMP/d.log" || fail "the daemon did not log the loss"

step "a file backend keeps what was written through a passed descriptor after unmount"
expect_r3ctl 0 mount "file:$TEST_TMP/disk.img?size=8M" --chunk-size 64K
fdev=$(cat "$TEST_TMP/out")
expect_r3ctl 0 --as "$(id -u r3user):$(id -g r3user):4242" open "$fdev" -- "$MMAP_PATTERN" write 0 $((8 << 20)) 7
expect_r3ctl 0 unmount "$fdev"
"$MMAP_PATTERN" print 0 $((8 << 20)) 7 | cmp - "$TEST_TMP/disk.img" || fail "the file does not hold the pattern"

step "mount --fd --rm: the program's status, and the Unmount however the run fails after Mount"
expect_r3ctl 7 mount memory:4M --fd --rm -- sh -c 'exit 7'
expect_r3ctl 0 --json ls
[ "$(cat "$TEST_TMP/out")" = "[]" ] || fail "--rm left a mount behind: $(cat "$TEST_TMP/out")"
# Descriptor limits make every step after Mount fail in turn: the proxy, receiving the
# descriptor (which breaks the connection), r3ctl's copy of it; enough of them, and the
# program runs. After each, the mount is gone, or r3ctl said why it could not unmount it.
failures_after_mount=0
for n in $(seq 4 64); do
	status=0 # run_r3ctl below sets rc, out and err
	(ulimit -n "$n" && exec "$R3CTL" mount memory:4M --fd --rm -- true) >"$TEST_TMP/rm.out" 2>"$TEST_TMP/rm.err" || status=$?
	echo "ulimit -n $n: exit $status: $(tr '\n' ' ' <"$TEST_TMP/rm.err")"
	grep -q -e "--rm: cannot unmount" -e "cannot keep the descriptor" "$TEST_TMP/rm.err" \
		&& failures_after_mount=$((failures_after_mount + 1))
	run_r3ctl --json ls
	left=$(json_field '" ".join(m["device"] for m in j)')
	if [ -n "$left" ]; then
		grep -q -e "--rm: cannot unmount" "$TEST_TMP/rm.err" || fail "--rm left $left behind without a word (ulimit -n $n)"
		for d in $left; do expect_r3ctl 0 unmount "$d"; done
	fi
	[ "$status" -eq 0 ] && break
done
[ "$status" -eq 0 ] || fail "r3ctl never ran the program: $(cat "$TEST_TMP/rm.err")"
[ "$failures_after_mount" -ge 2 ] || fail "only $failures_after_mount limits failed after Mount: the loop proves little"

step "Unmount of a device whose filesystem is still mounted: Busy, left connected, nothing lost"
expect_r3ctl 0 mount "file:$TEST_TMP/fs.img?size=64M"
mdev=$(cat "$TEST_TMP/out")
mkfs.ext4 -q -F "$mdev" || fail "mkfs.ext4 on $mdev"
mkdir -p "$TEST_TMP/mnt"
mount "$mdev" "$TEST_TMP/mnt" || fail "mount $mdev"
head -c 4M /dev/urandom >"$TEST_TMP/mnt/data"
sum=$(md5sum <"$TEST_TMP/mnt/data")
expect_r3ctl 1 --json unmount "$mdev"
[ "$(json_error)" = org.r3map.Error.Busy ] || { cat "$TEST_TMP/out"; fail "unmount of a mounted device did not fail with Busy"; }
dev_free "$mdev" && fail "$mdev was disconnected under a mounted filesystem"
[ "$(md5sum <"$TEST_TMP/mnt/data")" = "$sum" ] || fail "the file changed"
umount "$TEST_TMP/mnt"
expect_r3ctl 0 unmount "$mdev"
dev_free "$mdev" || fail "$mdev not free after unmounting"
expect_r3ctl 0 mount "file:$TEST_TMP/fs.img"
mdev=$(cat "$TEST_TMP/out")
mount -o ro "$mdev" "$TEST_TMP/mnt" || fail "remount $mdev"
[ "$(md5sum <"$TEST_TMP/mnt/data")" = "$sum" ] || fail "the file did not survive unmount and remount"
umount "$TEST_TMP/mnt"
expect_r3ctl 0 unmount "$mdev"

step "SIGTERM with mounts attached, one with a filesystem still mounted and its writes unsynced"
expect_r3ctl 0 mount "file:$TEST_TMP/disk2.img?size=4M"
d1=$(cat "$TEST_TMP/out")
expect_r3ctl 0 mount memory:4M
d2=$(cat "$TEST_TMP/out")
printf 'written before SIGTERM' | dd of="$d1" bs=4096 conv=sync oflag=direct status=none
expect_r3ctl 0 mount "file:$TEST_TMP/live.img?size=64M"
ldev=$(cat "$TEST_TMP/out")
mkfs.ext4 -q -F "$ldev" || fail "mkfs.ext4 on $ldev"
mkdir -p "$TEST_TMP/live"
# Keep everything in the page cache and the journal until something syncs: no periodic
# writeback, no journal commit before the daemon is stopped.
expire=$(cat /proc/sys/vm/dirty_expire_centisecs) writeback=$(cat /proc/sys/vm/dirty_writeback_centisecs)
echo 360000 >/proc/sys/vm/dirty_expire_centisecs
echo 0 >/proc/sys/vm/dirty_writeback_centisecs
mount -o commit=3600 "$ldev" "$TEST_TMP/live" || fail "mount $ldev"
mkdir "$TEST_TMP/live/dir"
for f in a b dir/c; do head -c $((1 << 20)) /dev/urandom >"$TEST_TMP/live/$f"; done
(cd "$TEST_TMP/live" && md5sum a b dir/c) >"$TEST_TMP/live.md5"
grep -q "^Dirty: *[1-9]" /proc/meminfo || fail "nothing is dirty: the test would prove nothing"
stop_r3mapd d
echo "$expire" >/proc/sys/vm/dirty_expire_centisecs
echo "$writeback" >/proc/sys/vm/dirty_writeback_centisecs
dev_free "$d1" && dev_free "$d2" || fail "devices still connected after r3mapd exited"
head -c 22 "$TEST_TMP/disk2.img" | grep -q 'written before SIGTERM' || fail "data written before SIGTERM was lost"
grep -q "unmounted" "$TEST_TMP/d.log" || fail "no unmount in the daemon log"
grep -q "$ldev is still in use at shutdown (mounted at: $TEST_TMP/live)" "$TEST_TMP/d.log" \
	|| fail "no warning naming $ldev and its mountpoint: $(grep -i "in use" "$TEST_TMP/d.log")"
grep -q "synced the filesystem mounted at $TEST_TMP/live" "$TEST_TMP/d.log" || fail "the filesystem was not synced"
umount "$TEST_TMP/live" 2>/dev/null || umount -l "$TEST_TMP/live"
for _ in $(seq 50); do dev_free "$ldev" && break; sleep 0.1; done
dev_free "$ldev" || fail "$ldev still connected after its filesystem was unmounted"

step "the filesystem's files survived: re-attach the image with a new r3mapd"
start_r3mapd d2
expect_r3ctl 0 mount "file:$TEST_TMP/live.img"
ldev=$(cat "$TEST_TMP/out")
mount "$ldev" "$TEST_TMP/live" || fail "mount $ldev again"
(cd "$TEST_TMP/live" && md5sum -c --quiet "$TEST_TMP/live.md5") || fail "the files written before SIGTERM are lost or damaged"
umount "$TEST_TMP/live"
e2fsck -fn "$ldev" >"$TEST_TMP/fsck" 2>&1 || { cat "$TEST_TMP/fsck"; fail "e2fsck found damage"; }
expect_r3ctl 0 unmount "$ldev"
stop_r3mapd d2

step "managed mount of an r3:// export: mkfs, files, sync with the remote stopped, kill -9 r3mapd"
# The guest has no network card: the remote runs here, on loopback, from a file.
ip link set lo up || fail "cannot bring up lo"
truncate -s 64M "$TEST_TMP/remote.img"
start_r3serve rem --r3 --listen 127.0.0.1:0 --name disk "file:$TEST_TMP/remote.img"
for _ in $(seq 100); do [ -s "$TEST_TMP/rem.out" ] && break; sleep 0.1; done
remote="r3://$(tcp_address rem)/disk"
mkdir -p "$TEST_TMP/state"
STATE_DIRECTORY="$TEST_TMP/state" start_r3mapd m
expect_r3ctl 0 mount "$remote" --managed --cache "$TEST_TMP/mcache" --pull-first 100% --push-interval 1h
mdev=$(cat "$TEST_TMP/out")
[[ "$mdev" =~ ^/dev/nbd[0-9]+$ ]] || fail "managed mount printed '$mdev'"
expect_r3ctl 0 --json status "$mdev"
mid=$(json_field 'j["id"]')
mkfs.ext4 -q -F "$mdev" || fail "mkfs.ext4 on $mdev"
mkdir -p "$TEST_TMP/m"
mount "$mdev" "$TEST_TMP/m" || fail "mount $mdev"
# Everything is local (pull-first 100%): with the remote stopped, only the cache and its
# journal can keep what follows.
kill -STOP "$rem_pid"
mkdir "$TEST_TMP/m/dir"
for f in a b dir/c; do head -c $((3 << 20)) /dev/urandom >"$TEST_TMP/m/$f"; done
(cd "$TEST_TMP/m" && md5sum a b dir/c) >"$TEST_TMP/m.md5"
sync -f "$TEST_TMP/m/a" || fail "sync on the managed mount"
kill -KILL "$m_pid"
wait "$m_pid" 2>/dev/null || true
umount -l "$TEST_TMP/m"
for _ in $(seq 100); do dev_free "$mdev" && break; sleep 0.1; done
kill -CONT "$rem_pid"

step "r3mapd again: the managed mount comes back from its cache, the files are intact"
STATE_DIRECTORY="$TEST_TMP/state" start_r3mapd m2
mdev2=""
for _ in $(seq 100); do
	run_r3ctl --json status "$mid"
	[ "$rc" -eq 0 ] && [ "$(json_field 'j["state"]')" = ready ] && mdev2=$(json_field 'j["device"]') && break
	sleep 0.2
done
[[ "$mdev2" =~ ^/dev/nbd[0-9]+$ ]] || fail "the managed mount $mid was not restored: $(cat "$TEST_TMP/out" "$TEST_TMP/m2.log")"
# The remote was stopped: what was written can only come back as dirty chunks of the journal.
grep -Eq "resumed the cache $TEST_TMP/mcache: .*, [1-9][0-9]* dirty chunks" "$TEST_TMP/m2.log" \
	|| fail "the restored mount did not resume its dirty cache: $(cat "$TEST_TMP/m2.log")"
mount "$mdev2" "$TEST_TMP/m" || fail "mount $mdev2"
(cd "$TEST_TMP/m" && md5sum -c --quiet "$TEST_TMP/m.md5") || fail "files written before kill -9 are lost or damaged"
umount "$TEST_TMP/m"

step "Sync(): the remote holds the files"
expect_r3ctl 0 sync "$mid"
expect_r3ctl 0 unmount "$mid"
stop_r3serve rem
expect_r3ctl 0 mount "file:$TEST_TMP/remote.img" --read-only
rdev=$(cat "$TEST_TMP/out")
mount -o ro,noload "$rdev" "$TEST_TMP/m" || fail "mount the remote's image"
(cd "$TEST_TMP/m" && md5sum -c --quiet "$TEST_TMP/m.md5") || fail "the remote does not hold the files after Sync()"
umount "$TEST_TMP/m"
expect_r3ctl 0 unmount "$rdev"
stop_r3mapd m2
echo PASS
