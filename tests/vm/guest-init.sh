#!/bin/sh
# PID 1 of the test guest (busybox, from the initramfs). Loads the modules, mounts the
# host's root read-only over virtio-9p, and runs the host-written /run.sh inside it, so
# the guest uses the same binaries (build tree, mkfs.ext4, ...) as the host.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "R3VM: $*"; }
die() { say "FATAL $*"; poweroff -f; }
say "booted uptime=$(cut -d' ' -f1 /proc/uptime)"

while read -r mod args; do
	[ -n "$mod" ] || continue
	insmod "/lib/modules/$mod" $args || say "insmod $mod failed"
done < /modules.order

mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host || die "cannot mount the host root"
for fs in "proc /proc" "sysfs /sys" "devtmpfs /dev" "tmpfs /tmp" "tmpfs /run"; do
	set -- $fs
	mount -t "$1" "$1" "/host$2" || die "cannot mount $1 on /host$2"
done
mkdir -p /host/dev/pts /host/dev/shm /host/tmp/r3results
mount -t devpts devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /host/tmp/r3results || die "cannot mount the results share"
say "ready uptime=$(cut -d' ' -f1 /proc/uptime)"

HOME=/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	chroot /host /bin/sh /tmp/r3results/run.sh
say "exit $? uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
umount /host/tmp/r3results
poweroff -f
