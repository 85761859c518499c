#!/usr/bin/env bash
# The kernel NBD tests. Runs as root inside the test guest (run-guest.sh), which has
# nbd.ko loaded and the host's root file system mounted read-only.
#   guest-tests.sh R3SERVE OUT_DIR UDEV_DIR [TEST...]
# Appends "PASS name seconds", "FAIL name seconds: why" and "METRIC ..." lines to
# OUT_DIR/results.txt. Every test runs under its own timeout.
set -u
R3SERVE="$1" OUT="$2" UDEV_DIR="$3"
shift 3
RESULTS="$OUT/results.txt"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/r3vm-XXXXXX")"
export R3SERVE OUT WORK
source "$(dirname "$0")/vm_lib.sh"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${guest_tests[@]}")

# ---- helpers (exported: each test runs in its own bash under timeout) ------------------

# serve_spawn NAME ARGS...: starts r3serve --device ARGS in the background (stdout in
# $WORK/NAME.out, log in $WORK/NAME.log) and sets SPID.
serve_spawn() {
	local name="$1"
	shift
	: > "$WORK/$name.out"
	"$R3SERVE" --device "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" &
	SPID=$!
	echo "$SPID" >> "$WORK/pids"
}

# serve_wait NAME PID: waits until r3serve printed its device; sets DEV.
serve_wait() {
	local name="$1" pid="$2" i
	for i in $(seq 600); do
		DEV="$(head -n1 "$WORK/$name.out")"
		[ -n "$DEV" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "r3serve ($name) printed no device:" >&2
	cat "$WORK/$name.log" >&2
	return 1
}

# serve_start NAME ARGS...: both; sets SPID and DEV.
serve_start() {
	serve_spawn "$@"
	serve_wait "$1" "$SPID"
}

# serve_stop PID DEV: SIGTERM, expect exit 0 and the device free afterwards.
serve_stop() {
	local pid="$1" dev="$2" status=0
	kill -TERM "$pid"
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || { echo "r3serve exited with $status after SIGTERM" >&2; return 1; }
	dev_free "$dev" || { echo "$dev is still connected after r3serve exited" >&2; return 1; }
}

# ready_ms NAME: the attach-to-ready time r3serve logged.
ready_ms() {
	sed -n 's/.* ready after \([0-9.]*\) ms.*/\1/p' "$WORK/$1.log" | head -n1
}

# stats NAME PID FIELD: asks r3serve (SIGUSR1) for its counters and prints one.
stats() {
	local file="$WORK/$1.stats" i
	rm -f "$file"
	kill -USR1 "$2"
	for i in $(seq 100); do
		[ -s "$file" ] && break
		sleep 0.05
	done
	sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p" "$file"
}

# write_files DIR: three files of known content; their hashes go to DIR.sha256 in $WORK.
write_files() {
	local dir="$1" tag="$2"
	dd if=/dev/urandom of="$dir/big.bin" bs=1M count=8 status=none
	dd if=/dev/urandom of="$dir/small.bin" bs=4k count=3 status=none
	echo "hello from the r3map vm test $tag" > "$dir/hello.txt"
	(cd "$dir" && sha256sum big.bin small.bin hello.txt) > "$WORK/$tag.sha256"
}

verify_files() {
	local dir="$1" tag="$2"
	(cd "$dir" && sha256sum -c --quiet "$WORK/$tag.sha256")
}

# io_flushers PID: threads of PID with PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE, the flags
# PR_SET_IO_FLUSHER sets (field 9 of /proc/PID/task/TID/stat).
io_flushers() {
	local stat count=0 flags
	for stat in /proc/"$1"/task/*/stat; do
		flags=$(sed 's/.*) //' "$stat" | cut -d' ' -f7)
		[ $((flags & 0x180000)) = $((0x180000)) ] && count=$((count + 1))
	done
	echo $count
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

metric() {
	echo "METRIC $*" >> "$RESULTS"
}

export -f io_flushers serve_spawn serve_wait serve_start serve_stop dev_free ready_ms stats write_files verify_files fail metric
export RESULTS

# ---- tests -------------------------------------------------------------------------------

# 1. memory backend, ext4: write, remount, verify; SIGTERM frees the device.
t_memory_ext4() {
	serve_start mem auto memory:256M || fail "attach"
	local pid=$SPID dev=$DEV
	echo "attached $dev"
	[ -b "$dev" ] || fail "$dev is not a block device"
	mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4"
	mkdir -p "$WORK/mnt"
	mount "$dev" "$WORK/mnt" || fail "mount"
	write_files "$WORK/mnt" mem
	sync
	umount "$WORK/mnt" || fail "umount"
	echo 3 > /proc/sys/vm/drop_caches
	mount "$dev" "$WORK/mnt" || fail "remount"
	verify_files "$WORK/mnt" mem || fail "hashes differ after remount"
	umount "$WORK/mnt" || fail "umount"
	serve_stop "$pid" "$dev" || fail "stop"
}

# 2. file backend: detach, attach the same file again (other method), verify.
t_file_persistence() {
	local img="$WORK/persist.img"
	serve_start persist1 auto --netlink "file:$img?size=128M" || fail "attach"
	local pid=$SPID dev=$DEV
	mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4"
	mkdir -p "$WORK/pmnt"
	mount "$dev" "$WORK/pmnt" || fail "mount"
	write_files "$WORK/pmnt" persist
	umount "$WORK/pmnt" || fail "umount"
	serve_stop "$pid" "$dev" || fail "stop"

	serve_start persist2 auto --ioctl "file:$img" || fail "re-attach"
	pid=$SPID dev=$DEV
	mount "$dev" "$WORK/pmnt" || fail "mount after re-attach"
	verify_files "$WORK/pmnt" persist || fail "hashes differ after re-attach"
	umount "$WORK/pmnt" || fail "umount"
	serve_stop "$pid" "$dev" || fail "stop"
}

# 2b. SIGTERM while a filesystem on the device is mounted: r3serve keeps serving (a
# disconnect would lose what ext4 has not written back), a second signal is needed to
# force; after umount a single SIGTERM detaches and the data is all there.
t_mounted_sigterm() {
	local img="$WORK/mounted.img"
	serve_start busy1 auto "file:$img?size=64M" || fail "attach"
	local pid=$SPID dev=$DEV
	mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4"
	mkdir -p "$WORK/bmnt"
	mount "$dev" "$WORK/bmnt" || fail "mount"
	write_files "$WORK/bmnt" mounted
	kill -TERM "$pid"
	local i
	for i in $(seq 50); do
		grep -q "in use" "$WORK/busy1.log" && break
		sleep 0.1
	done
	grep -q "in use" "$WORK/busy1.log" || fail "r3serve did not say the device is in use"
	kill -0 "$pid" 2>/dev/null || fail "r3serve exited under a mounted filesystem"
	dev_free "$dev" && fail "$dev was disconnected under a mounted filesystem"
	verify_files "$WORK/bmnt" mounted || fail "files changed while mounted"
	umount "$WORK/bmnt" || fail "umount"
	# The first signal was answered with a warning; this one is the forcing one, and with
	# nothing mounted any more it simply detaches.
	serve_stop "$pid" "$dev" || fail "stop after umount"
	serve_start busy2 auto "file:$img" || fail "re-attach"
	pid=$SPID dev=$DEV
	mount "$dev" "$WORK/bmnt" || fail "mount after re-attach"
	verify_files "$WORK/bmnt" mounted || fail "hashes differ after re-attach"
	umount "$WORK/bmnt" || fail "umount"
	serve_stop "$pid" "$dev" || fail "stop"
}

# 3. fsync reaches the server as FLUSH, blkdiscard as TRIM, and TRIM punches holes.
t_flush_trim() {
	local img="$WORK/trim.img"
	serve_start trim auto --stats-file "$WORK/trim.stats" "file:$img?size=64M" || fail "attach"
	local pid=$SPID dev=$DEV
	local f0 f1 t1 t2 b1 b2
	f0=$(stats trim "$pid" flushes)
	dd if=/dev/urandom of="$dev" bs=1M count=16 conv=fsync status=none || fail "dd"
	f1=$(stats trim "$pid" flushes)
	echo "flushes before/after fsync: $f0 $f1"
	[ "$f1" -gt "$f0" ] || fail "fsync did not reach the server as FLUSH ($f0 -> $f1)"
	b1=$(stat -c %b "$img")
	t1=$(stats trim "$pid" trims)
	blkdiscard -o 0 -l 16M "$dev" || fail "blkdiscard"
	t2=$(stats trim "$pid" trims)
	b2=$(stat -c %b "$img")
	echo "trims before/after blkdiscard: $t1 $t2; image blocks: $b1 -> $b2"
	[ "$t2" -gt "$t1" ] || fail "blkdiscard did not reach the server as TRIM ($t1 -> $t2)"
	# 16 MiB = 32768 blocks of 512 bytes were allocated and must be holes now.
	[ $((b1 - b2)) -ge 32768 ] || fail "TRIM did not punch holes ($b1 -> $b2 blocks)"
	cmp -n $((16 << 20)) "$dev" /dev/zero || fail "discarded range does not read as zeros"
	serve_stop "$pid" "$dev" || fail "stop"
	metric "flush_trim flushes=$f1 trims=$t2 blocks_before=$b1 blocks_after=$b2"
}

# 4. Four attaches started together get four distinct devices (both methods, a few
#    rounds, since a race shows up only sometimes).
t_concurrent_attach() {
	local method i round
	for round in 1 2 3; do
	for method in --netlink --ioctl; do
		local pids=() devs=()
		for i in 1 2 3 4; do
			serve_spawn "conc$i" auto "$method" memory:32M
			pids+=("$SPID")
		done
		for i in 1 2 3 4; do
			serve_wait "conc$i" "${pids[$((i - 1))]}" || fail "$method: attach $i"
			devs+=("$DEV")
		done
		echo "round $round $method: ${devs[*]}"
		[ "$(printf '%s\n' "${devs[@]}" | sort -u | wc -l)" -eq 4 ] || fail "$method: devices not distinct: ${devs[*]}"
		for i in 0 1 2 3; do
			dd if=/dev/urandom of="$WORK/conc.data" bs=64k count=4 status=none
			dd if="$WORK/conc.data" of="${devs[$i]}" bs=64k oflag=direct status=none || fail "write ${devs[$i]}"
			cmp -n $((256 << 10)) "$WORK/conc.data" "${devs[$i]}" || fail "read back ${devs[$i]}"
		done
		for i in 0 1 2 3; do
			serve_stop "${pids[$i]}" "${devs[$i]}" || fail "stop ${devs[$i]}"
		done
	done
	done
}

# 4a. Asking for a device that is in use fails at once, with either method.
t_busy_device() {
	serve_start busy auto memory:16M || fail "attach"
	local pid=$SPID dev=$DEV method t0 t1 status
	for method in netlink ioctl; do
		t0=$(date +%s.%N)
		status=0
		"$R3SERVE" --device "$dev" "--$method" memory:16M > "$WORK/busy-$method.out" 2> "$WORK/busy-$method.log" || status=$?
		t1=$(date +%s.%N)
		echo "$method: exit $status after $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')s: $(tail -n1 "$WORK/busy-$method.log")"
		[ "$status" = 1 ] || fail "$method: attaching to the busy $dev exited with $status"
		[ ! -s "$WORK/busy-$method.out" ] || fail "$method: printed a device anyway"
		grep -qE 'in use|is connected' "$WORK/busy-$method.log" || fail "$method: unclear error"
		awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }' || fail "$method: took too long"
	done
	dd if=/dev/zero of="$dev" bs=64k count=1 oflag=direct status=none || fail "the first attach was disturbed"
	serve_stop "$pid" "$dev" || fail "stop"
}

# 4b. Several connections per device (multi-conn): the server sees each, data is intact
#     under parallel I/O.
t_multi_conn() {
	local method n
	dd if=/dev/urandom of="$WORK/mc.data" bs=1M count=8 status=none
	for method in "netlink 4" "ioctl 2"; do
		set -- $method
		serve_start "mc-$1" auto "--$1" --connections "$2" --stats-file "$WORK/mc-$1.stats" memory:64M || fail "$1 attach"
		local pid=$SPID dev=$DEV
		grep -q "$2 connections" "$WORK/mc-$1.log" || fail "$1: not $2 connections: $(cat "$WORK/mc-$1.log")"
		# Four writers at once, each its own 8 MiB slice. (A bare `wait` would wait for
		# r3serve too.)
		local writers=()
		for n in 0 1 2 3; do
			dd if="$WORK/mc.data" of="$dev" bs=1M seek=$((n * 8)) oflag=direct status=none &
			writers+=($!)
		done
		for n in "${writers[@]}"; do
			wait "$n" || fail "$1: a writer failed"
		done
		for n in 0 1 2 3; do
			cmp -i 0:$((n * 8 << 20)) -n $((8 << 20)) "$WORK/mc.data" "$dev" || fail "$1: slice $n differs"
		done
		n=$(stats "mc-$1" "$pid" connections)
		[ "$n" = "$2" ] || fail "$1: the server saw $n connections, not $2"
		n=$(io_flushers "$pid")
		[ "$n" -ge "$2" ] || fail "$1: only $n threads are PR_SET_IO_FLUSHER"
		echo "$1: $n threads are PR_SET_IO_FLUSHER"
		serve_stop "$pid" "$dev" || fail "$1 stop"
		echo "$1: $2 connections, parallel writes verified"
	done
}

# 4c. The netlink commands r3serve does not use on a live device: STATUS, RECONFIGURE.
t_netlink_commands() {
	serve_start nl auto --netlink memory:16M || fail "attach"
	local pid=$SPID dev=$DEV index free
	index="${dev#/dev/nbd}"
	for free in 0 1 2 3 4 5 6 7; do
		[ "$free" != "$index" ] && dev_free "/dev/nbd$free" && break
	done
	local check
	# r3serve is build/cli/r3serve/r3serve; the check is build/tests/vm/nbd_netlink_check.
	check="$(dirname "$R3SERVE")/../../tests/vm/nbd_netlink_check"
	"$check" "$index" "$free" || fail "netlink STATUS/RECONFIGURE"
	serve_stop "$pid" "$dev" || fail "stop"

	# Disconnected from outside: r3serve notices, exits 1 and touches nothing it no
	# longer owns.
	serve_start nl2 auto --netlink memory:16M || fail "attach"
	pid=$SPID dev=$DEV
	"$check" --disconnect "${dev#/dev/nbd}" || fail "external DISCONNECT"
	local status=0
	wait "$pid" || status=$?
	echo "r3serve exited with $status after an external disconnect"
	[ "$status" = 1 ] || fail "r3serve exited with $status, not 1"
	grep -q "dropped the connection" "$WORK/nl2.log" || fail "r3serve did not say why it stopped"
	dev_free "$dev" || fail "$dev not free"
}

# 4d. A request cap below the kernel's request size: r3serve lowers queue/max_sectors_kb,
#     so 4 MiB direct I/O arrives in pieces the server takes, and none is refused.
t_request_cap() {
	serve_start cap auto --max-request 64K --stats-file "$WORK/cap.stats" memory:16M || fail "attach"
	local pid=$SPID dev=$DEV kb errors
	kb=$(cat "/sys/block/$(basename "$dev")/queue/max_sectors_kb")
	echo "queue/max_sectors_kb is $kb with --max-request 64K"
	[ "$kb" -le 64 ] || fail "max_sectors_kb is $kb, above the 64 KiB cap"
	grep -q "requests capped at 64 KiB" "$WORK/cap.log" || fail "r3serve did not log the cap"
	dd if=/dev/urandom of="$WORK/cap.in" bs=1M count=4 status=none
	dd if="$WORK/cap.in" of="$dev" bs=4M oflag=direct status=none || fail "a 4 MiB direct write"
	dd if="$dev" of="$WORK/cap.out" bs=4M count=1 iflag=direct status=none || fail "a 4 MiB direct read"
	cmp "$WORK/cap.in" "$WORK/cap.out" || fail "the bytes read back differ"
	errors=$(stats cap "$pid" errors)
	echo "server errors: $errors"
	[ "$errors" = 0 ] || fail "the server refused $errors requests"
	serve_stop "$pid" "$dev" || fail "stop"
}

# 4e. A request that outlives --timeout: the kernel drops the connection (LINK_DEAD) and
#     waits --dead-conn-timeout for a new one; r3serve gives it one through netlink
#     RECONFIGURE, and the reads go on on the same device with the right bytes.
t_link_dead() {
	dd if=/dev/urandom of="$WORK/ld.img" bs=1M count=16 status=none
	serve_start ld auto --netlink --timeout 2 --dead-conn-timeout 30 \
		"fault+file:$WORK/ld.img?fault-ops=read&fault-hang-after=40&fault-hang-for=5s&fault-hang-count=1" ||
		fail "attach"
	local pid=$SPID dev=$DEV
	dd if="$dev" of="$WORK/ld.out" bs=64k iflag=direct status=none || fail "a read failed across the dropped connection"
	cmp "$WORK/ld.img" "$WORK/ld.out" || fail "the bytes read differ"
	dmesg | grep -i "$(basename "$dev")" | grep -i "timed out\|dead\|reconnect" | tail -n 5
	grep "RECONFIGURE" "$WORK/ld.log" || fail "r3serve did not give the kernel a new connection"
	dev_free "$dev" && fail "the device was lost"
	dd if="$WORK/ld.img" of="$dev" bs=1M count=1 oflag=direct status=none || fail "a write after the reconnect"
	serve_stop "$pid" "$dev" || fail "stop"
}

# 5. netlink and ioctl × sysfs and udev readiness (udev: the kernel's events, then with
#    systemd-udevd running, its events), data checked through each. Time to ready is
#    measured over several attaches, the variants interleaved so drift hits all alike.
t_methods() {
	local rounds=5 r variant
	dd if=/dev/urandom of="$WORK/pattern" bs=64k count=16 status=none
	for r in $(seq $rounds); do
		for variant in "netlink sysfs" "ioctl sysfs" "netlink udev" "ioctl udev"; do
			attach_variant $variant $r
		done
	done
	start_udevd || fail "systemd-udevd did not start: $(cat "$WORK/udevd.log")"
	for r in $(seq $rounds); do
		for variant in "netlink udevd" "ioctl udevd"; do
			attach_variant $variant $r
		done
	done
	stop_udevd
	for variant in "netlink sysfs" "ioctl sysfs" "netlink udev" "ioctl udev" "netlink udevd" "ioctl udevd"; do
		set -- $variant
		local sorted
		sorted="$(sort -n "$WORK/times-$1-$2" | tr '\n' ' ')"
		echo "$variant: ready after (ms) $sorted"
		metric "ready_ms method=$1 ready=$2 median=$(sort -n "$WORK/times-$1-$2" | sed -n "$(( (rounds + 1) / 2 ))p") samples=${sorted% }"
	done
}

# attach_variant METHOD READY ROUND: one attach, its time, and a data check in round 1.
attach_variant() {
	local method=$1 ready=$2 round=$3 name="m-$1-$2-$3"
	local flag=$ready
	[ "$ready" = udevd ] && flag=udev
	serve_start "$name" auto "--$method" --ready "$flag" memory:64M || fail "$method $ready: attach"
	local pid=$SPID dev=$DEV
	grep -q "($method, $flag readiness" "$WORK/$name.log" || fail "$method $ready: r3serve used another method: $(cat "$WORK/$name.log")"
	ready_ms "$name" >> "$WORK/times-$method-$ready"
	if [ "$round" = 1 ]; then
		dd if="$WORK/pattern" of="$dev" bs=64k oflag=direct status=none || fail "$method $ready: write"
		cmp "$WORK/pattern" "$dev" -n $((1 << 20)) || fail "$method $ready: data differs"
	fi
	serve_stop "$pid" "$dev" || fail "$method $ready: stop"
}
export -f attach_variant

start_udevd() {
	[ -x "$UDEV_DIR/bin/udevadm" ] || return 1
	# The package's rules replace the host's (few) ones, in this guest only.
	mount --bind "$UDEV_DIR/lib/udev" /usr/lib/udev || return 1
	# udevadm acts as the daemon when called systemd-udevd.
	ln -sf "$UDEV_DIR/bin/udevadm" "$WORK/systemd-udevd"
	"$WORK/systemd-udevd" --resolve-names=never > "$WORK/udevd.log" 2>&1 &
	echo $! > "$WORK/udevd.pid"
	echo $! >> "$WORK/pids"
	local i pid=$!
	# Loading the rules takes a while under TCG on a busy host.
	for i in $(seq 600); do
		[ -e /run/udev/control ] && return 0
		kill -0 "$pid" 2>/dev/null || { echo "systemd-udevd exited" >> "$WORK/udevd.log"; return 1; }
		sleep 0.1
	done
	echo "no /run/udev/control after 60 s" >> "$WORK/udevd.log"
	return 1
}

stop_udevd() {
	if [ -f "$WORK/udevd.pid" ]; then
		local pid
		pid="$(cat "$WORK/udevd.pid")"
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
		rm -f "$WORK/udevd.pid" /run/udev/control
	fi
	umount /usr/lib/udev 2>/dev/null
	return 0
}
export UDEV_DIR
export -f start_udevd stop_udevd

# 6. kill -9 of r3serve while a reader is blocked on the device: the reader gets an I/O
#    error within timeout + dead-connection timeout; the device is usable afterwards.
t_kill9() {
	local method timeout=3 dead=3
	for method in netlink ioctl; do
		local upstream="" upid="" backend=memory:64M
		if [ "$method" = ioctl ]; then
			# SIGSTOP would interrupt NBD_DO_IT, which tears an ioctl device down by itself.
			# So the server under test reads from a device whose own server is frozen:
			# its request then stays in flight for sure.
			serve_start k-up auto --netlink memory:64M || fail "attach the upstream device"
			upid=$SPID upstream=$DEV backend="file:$upstream"
		fi
		serve_start "k-$method" auto "--$method" --timeout $timeout --dead-conn-timeout $dead "$backend" || fail "attach"
		local pid=$SPID dev=$DEV
		dd if=/dev/urandom of="$dev" bs=1M count=4 oflag=direct status=none || fail "write"
		# Nothing of the region read below may sit in a page cache on the way.
		sync
		echo 3 > /proc/sys/vm/drop_caches
		kill -STOP "${upid:-$pid}"
		dd if="$dev" of=/dev/null bs=4k count=1 skip=12000 iflag=direct 2> "$WORK/k-$method.reader" &
		local reader=$!
		sleep 1
		kill -0 "$reader" 2>/dev/null || fail "$method: the reader was not blocked: $(cat "$WORK/k-$method.reader")"
		local t0 t1 status=0
		t0=$(date +%s.%N)
		kill -KILL "$pid"
		wait "$reader" || status=$?
		t1=$(date +%s.%N)
		[ -z "$upid" ] || kill -CONT "$upid"
		wait "$pid" 2>/dev/null
		local took
		took=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')
		echo "$method: reader ended with status $status after ${took}s: $(head -n1 "$WORK/k-$method.reader")"
		grep -qi 'input/output error' "$WORK/k-$method.reader" || fail "$method: the reader got no I/O error"
		# The bound: the kernel's request timeout, then the dead-connection wait; plus TCG slack.
		awk -v t="$took" -v b=$((timeout + dead + 10)) 'BEGIN { exit !(t <= b) }' || fail "$method: took ${took}s"
		metric "kill9 method=$method reader_error_after_s=$took bound_s=$((timeout + dead))"

		# The device is reusable: attach to it by name and move data through it.
		serve_start "k2-$method" "$dev" "--$method" memory:64M || fail "$method: $dev not reusable"
		local pid2=$SPID
		[ "$DEV" = "$dev" ] || fail "$method: got $DEV instead of $dev"
		dd if=/dev/urandom of="$dev" bs=1M count=2 oflag=direct status=none || fail "$method: write after reuse"
		serve_stop "$pid2" "$dev" || fail "$method: stop after reuse"
		[ -z "$upid" ] || serve_stop "$upid" "$upstream" || fail "stop the upstream device"
	done
}

# 7. Remote RAM as swap (ram-dl): a managed mount of an r3:// export as the guest's swap. A
#    program touching 128 MiB more than the guest's RAM completes with every word intact,
#    swapoff is clean and the mount goes away. The remote and the cache are files on the
#    results share (the host's disk): in the guest's tmpfs they would take the RAM that swap
#    is meant to free. Both r3serve processes run with --swap: were their pages (code too)
#    paged out, the kernel would wait on the swap for the server of that swap.
t_swap() {
	local fill swap_mib=1024
	fill="$(dirname "$R3SERVE")/../../tests/vm/swap_fill"
	[ -x "$fill" ] || fail "no $fill"
	[ -e /proc/swaps ] || fail "the guest kernel has no swap support (no /proc/swaps)"
	local tool
	for tool in mkswap swapon swapoff; do
		command -v $tool >/dev/null || fail "no $tool (util-linux) in the guest's root"
	done
	ip link set lo up || fail "cannot bring up lo"
	local dir="$OUT/swap"
	rm -rf "$dir"
	mkdir -p "$dir/cache"
	# The cache's data on the scratch disk vm-test.sh gives this boot (/dev/vda, the size of
	# the region), with no file system: swap written through ext4 deadlocked on its inode and
	# block-allocation locks (writeback allocating memory that only the swap could free),
	# and through the 9p share each write allocates a request buffer. The journal, the lock
	# and the remote stay on the share: they are written before and after the pressure.
	[ -b /dev/vda ] || fail "no scratch disk /dev/vda (R3_VM_DISK_MIB)"
	ln -s /dev/vda "$dir/cache/data"
	truncate -s ${swap_mib}M "$dir/remote.img"

	# --swap: the servers of the swap device are never paged out to it.
	"$R3SERVE" --r3 --swap --listen 127.0.0.1:0 --name swap "file:$dir/remote.img" \
		> "$WORK/swapremote.out" 2> "$WORK/swapremote.log" &
	local rpid=$! i
	echo "$rpid" >> "$WORK/pids"
	for i in $(seq 100); do [ -s "$WORK/swapremote.out" ] && break; sleep 0.1; done
	[ -s "$WORK/swapremote.out" ] || fail "the remote did not start: $(cat "$WORK/swapremote.log")"
	# No background pull: swap is written before it is read, so there is nothing to fetch.
	# Pushed when it stops (SIGTERM pushes every dirty chunk), not on a timer: a chunk swapped
	# out several times goes to the remote once, and 9p carries half as much meanwhile.
	# --swap: no request timeout (under TCG and memory pressure a request can wait minutes,
	# and a timeout would drop the connection, so the swap with it: init then dies of a
	# failed swap-in) and never an OOM victim.
	serve_start swap auto --swap --managed --cache "$dir/cache" --background no --push-interval 1h \
		--stats-file "$WORK/swap.stats" \
		"r3://$(head -n1 "$WORK/swapremote.out")/swap" || fail "managed mount"
	local pid=$SPID dev=$DEV
	echo "managed mount $dev of r3://$(head -n1 "$WORK/swapremote.out")/swap"

	# A larger free reserve: reclaim starts earlier, and the servers' own allocations find
	# free pages instead of waiting on the swap they serve.
	local min_free
	min_free=$(cat /proc/sys/vm/min_free_kbytes)
	echo 65536 > /proc/sys/vm/min_free_kbytes
	# A stall shows on the console: the kernel names every task blocked for 30 s, with its
	# stack (at KERN_INFO, hence the console log level).
	echo 30 > /proc/sys/kernel/hung_task_timeout_secs
	echo 7 > /proc/sys/kernel/printk
	mkswap "$dev" > /dev/null || fail "mkswap $dev"
	# --discard=once: the old contents of a swap area are garbage, and a discarded chunk
	# becomes local (zeros) without a pull, so a swap write never waits on the remote.
	swapon --discard=once "$dev" || fail "swapon $dev"
	grep -q "^$dev " /proc/swaps || fail "$dev is not in /proc/swaps"
	local ram_mib alloc out0 in0 out1 in1 t0 took
	ram_mib=$(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024 ))
	alloc=$((ram_mib + 128))
	out0=$(awk '/^pswpout / { print $2 }' /proc/vmstat)
	in0=$(awk '/^pswpin / { print $2 }' /proc/vmstat)
	echo "RAM $ram_mib MiB; touching $alloc MiB"
	t0=$(date +%s.%N)
	"$fill" $alloc || fail "swap_fill $alloc did not complete"
	took=$(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
	out1=$(awk '/^pswpout / { print $2 }' /proc/vmstat)
	in1=$(awk '/^pswpin / { print $2 }' /proc/vmstat)
	local swapped_out=$(( (out1 - out0) * 4 / 1024 )) swapped_in=$(( (in1 - in0) * 4 / 1024 ))
	echo "swap_fill took ${took}s; swapped out $swapped_out MiB, in $swapped_in MiB"
	[ "$swapped_out" -ge 64 ] || fail "only $swapped_out MiB went to swap: the test did not need it"
	swapoff "$dev" || fail "swapoff $dev"
	echo "$min_free" > /proc/sys/vm/min_free_kbytes
	grep -q "^$dev " /proc/swaps && fail "$dev is still in /proc/swaps after swapoff"
	local written pulled
	written=$(stats swap "$pid" bytes_written)
	pulled=$(stats swap "$pid" pulled_bytes)
	# SIGTERM pushes every dirty chunk to the remote before r3serve exits.
	local t1 stop_s pushed
	t1=$(date +%s.%N)
	serve_stop "$pid" "$dev" || fail "stop the managed mount"
	stop_s=$(echo "$t1 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
	kill -TERM "$rpid"
	wait "$rpid"
	# What reached the remote, as it counted it (zeroed chunks go as zeroings, not bytes).
	pushed=$(sed -n 's/.*served: .* \([0-9][0-9]*\) bytes written.*/\1/p' "$WORK/swapremote.log" | tail -n1)
	[ -n "$pushed" ] && [ "$pushed" -gt 0 ] || fail "the remote received no writes: $(tail -n2 "$WORK/swapremote.log")"
	echo "device: $written bytes written; pulled $pulled bytes; the remote received $pushed bytes in the ${stop_s}s stop"
	metric "swap ram_mib=$ram_mib alloc_mib=$alloc seconds=$took swapped_out_mib=$swapped_out swapped_in_mib=$swapped_in device_bytes_written=$written pulled_bytes=$pulled pushed_bytes=$pushed stop_seconds=$stop_s"
	rm -rf "$dir"
}

export -f t_memory_ext4 t_file_persistence t_mounted_sigterm t_flush_trim t_concurrent_attach t_busy_device t_multi_conn t_netlink_commands t_request_cap t_link_dead t_methods t_kill9 t_swap

# ---- runner ------------------------------------------------------------------------------

cleanup() {
	local pid
	# A swap device left by a failed swap test goes first, while its server still runs.
	swapoff -a 2>/dev/null
	if [ -f "$WORK/pids" ]; then
		while read -r pid; do kill -KILL "$pid" 2>/dev/null; done < "$WORK/pids"
	fi
	stop_udevd
	grep " $WORK/" /proc/mounts | awk '{ print $2 }' | xargs -r -n1 umount -l
}

failed=0
for t in "${tests[@]}"; do
	declare -F "t_$t" > /dev/null || { echo "FAIL $t 0: no such test" >> "$RESULTS"; failed=1; continue; }
	echo "=== $t"
	start=$(date +%s.%N)
	status=0
	limit=${R3_VM_TEST_TIMEOUT:-180}
	[ "$t" = swap ] && limit=${R3_VM_SWAP_TIMEOUT:-600} # swapping under TCG is slow
	timeout --kill-after=5 "$limit" bash -c "t_$t" > "$OUT/$t.log" 2>&1 || status=$?
	cat "$OUT/$t.log"
	took=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
	if [ "$status" -eq 0 ]; then
		echo "PASS $t $took" | tee -a "$RESULTS"
	else
		why="$(grep -h '^FAIL: ' "$OUT/$t.log" | tail -n1 | cut -c7-)"
		[ "$status" -eq 124 ] && why="timed out"
		echo "FAIL $t $took: ${why:-exit status $status}" | tee -a "$RESULTS"
		failed=1
		for log in "$WORK"/*.log; do
			[ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; } >> "$OUT/$t.log"
		done
	fi
	cleanup
	rm -f "$WORK"/*.log "$WORK"/*.out
done
dmesg > "$OUT/dmesg.txt"
exit $failed
