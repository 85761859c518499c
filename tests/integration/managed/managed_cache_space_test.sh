#!/usr/bin/env bash
# Cache directories on small tmpfs mounts (root): a read-only one and one too small for the
# region are refused at start; on one that fills up while r3serve runs, writes that need new
# cache space fail with ENOSPC, acknowledged data stays readable, r3serve keeps serving and,
# once there is room again, takes writes and pushes every acknowledged byte on SIGTERM.
source "$(dirname "$0")/lib_managed.sh"
require nbdcopy cmp mount umount
require_nbd_python
[ "$(id -u)" -eq 0 ] || skip "needs root to mount tmpfs"

mounts=()
unmount_all() {
	local m
	for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
# The mounts go before lib.sh's cleanup removes $TEST_TMP.
trap 'unmount_all; _cleanup' EXIT
# tmpfs_at DIR SIZE [OPTIONS]: a private tmpfs, unmounted on exit.
tmpfs_at() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2${3:+,$3}" r3test "$1" 2>"$TEST_TMP/mount.err" ||
		skip "cannot mount tmpfs: $(cat "$TEST_TMP/mount.err")"
	mounts+=("$1")
}

port=$(free_port)
ruri=$(remote_uri "$port")
start_remote rem "$port" memory:16M
head -c 16M /dev/urandom >"$TEST_TMP/expected.img"
write_remote "$port" "$TEST_TMP/expected.img"

echo "== a read-only cache file system"
tmpfs_at "$TEST_TMP/ro" 32M ro
expect_refused readonly "cache $TEST_TMP/ro/c: cannot create the directory: Read-only file system" \
	--managed --socket "$TEST_TMP/x.sock" --cache "$TEST_TMP/ro/c" "$ruri"

echo "== a cache too small for the region"
tmpfs_at "$TEST_TMP/tiny" 8M
expect_refused toosmall "cache $TEST_TMP/tiny/c: too small: .* free, the region needs 16 MiB" \
	--managed --socket "$TEST_TMP/x.sock" --cache "$TEST_TMP/tiny/c" "$ruri"

echo "== the cache fills up while r3serve runs"
tmpfs_at "$TEST_TMP/small" 20M
start_managed man "$ruri" --cache "$TEST_TMP/small/c" --background no --push-interval 1h
uri=$(managed_uri man)
pattern_file "$TEST_TMP/a.bin" $((4 << 20)) 1
nbd_py "$uri" "
h.pwrite(open('$TEST_TMP/a.bin', 'rb').read(), 0)
h.flush()
"
overlay "$TEST_TMP/expected.img" 0 "$TEST_TMP/a.bin"
# Someone else takes all the room left.
dd if=/dev/zero of="$TEST_TMP/small/filler" bs=1M status=none 2>/dev/null || true
[ "$(df --output=avail -B1 "$TEST_TMP/small" | tail -1)" -lt 65536 ] || fail "the filler did not fill the tmpfs"
nbd_py "$uri" "
try:
    h.pwrite(b'y' * (1 << 20), 8 << 20)
except nbd.Error as e:
    print('write failed:', e.string)
    assert e.errno in (errno.ENOSPC, 'ENOSPC'), e.errno
else:
    raise SystemExit('a write needing new cache space succeeded on a full cache')
# What was acknowledged is still there, and overwriting it needs no new space.
assert h.pread(4 << 20, 0) == open('$TEST_TMP/a.bin', 'rb').read(), 'acknowledged data changed'
h.pwrite(b'z' * 4096, 4096)
" || fail "ENOSPC was not reported as such"
printf 'z%.0s' $(seq 4096) >"$TEST_TMP/z.bin"
overlay "$TEST_TMP/expected.img" 4096 "$TEST_TMP/z.bin"
kill -0 "$man_pid" || fail "r3serve died of a full cache"
echo "ok: ENOSPC for new data, acknowledged data intact, r3serve alive"

echo "== room again: writes work, SIGTERM pushes everything"
rm -f "$TEST_TMP/small/filler"
pattern_file "$TEST_TMP/b.bin" $((1 << 20)) 2
nbd_py "$uri" "
h.pwrite(open('$TEST_TMP/b.bin', 'rb').read(), 8 << 20)
h.flush()
"
overlay "$TEST_TMP/expected.img" $((8 << 20)) "$TEST_TMP/b.bin"
nbdcopy "$uri" "$TEST_TMP/served.bin"
cmp "$TEST_TMP/served.bin" "$TEST_TMP/expected.img" || fail "served data differs after the cache had room again"
stop_r3serve man
read_remote "$port" "$TEST_TMP/remote.bin"
cmp "$TEST_TMP/remote.bin" "$TEST_TMP/expected.img" || fail "the remote lacks acknowledged writes"
stop_r3serve rem
echo PASS
