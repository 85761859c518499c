#!/usr/bin/env bash
# Malformed calls get precise org.r3map.Error.* replies, and the daemon stays up.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"

require gdbus

echo '{"allowed_schemes": ["memory", "dir"]}' >"$TEST_TMP/r3mapd.json"
start_bus
start_r3mapd d --config "$TEST_TMP/r3mapd.json"

echo "== bad backend URIs: BadUri"
expect_error BadUri "unknown backend scheme 'nfs'" Mount nfs://server/x '{}'
expect_error BadUri "expected SCHEME:" Mount /tmp/disk.img '{}'
expect_error BadUri "greater than 0" Mount memory:0 '{}'
expect_error BadUri "unknown parameter 'colour'" Export "memory:1M?colour=red" 127.0.0.1:0 '{}'
echo "== schemes the configuration does not allow: SchemeNotAllowed"
expect_error SchemeNotAllowed "not in allowed_schemes" Mount "file:$TEST_TMP/x?size=1M" '{}'
expect_error SchemeNotAllowed "not in allowed_schemes" Export "file:$TEST_TMP/x?size=1M" 127.0.0.1:0 '{}'
echo "== a relative path would be the daemon's, not the caller's: InvalidArgument, even for root"
expect_error InvalidArgument "'dir:chunks?size=1M': path must be absolute" Export "dir:chunks?size=1M" 127.0.0.1:0 '{}'
expect_error InvalidArgument "path must be absolute" Mount "dir:./chunks?size=1M" '{}'
echo "== a backend that cannot be opened: BackendFailed"
expect_error BackendFailed "$TEST_TMP/no/such" Export "dir:$TEST_TMP/no/such/dir?size=1M" 127.0.0.1:0 '{}'

echo "== a socket the daemon cannot create is its own failure, not NotFound or NotPermitted"
expect_error Failed "cannot listen on '$TEST_TMP/no/such/dir/s.sock': No such file or directory" \
	Export memory:1M "unix:$TEST_TMP/no/such/dir/s.sock" '{}'

echo "== malformed options: InvalidArgument naming the key"
expect_error InvalidArgument "option 'size' must not be 0" Mount memory:1M "{'size': <uint64 0>}"
expect_error InvalidArgument "unknown option 'colour' (known: size, chunk_size, read_only, managed, and with it cache" Mount memory:1M "{'colour': <'red'>}"
expect_error InvalidArgument "option 'size': expected t (bytes) or s" Mount memory:1M "{'size': <true>}"
expect_error InvalidArgument "option 'read_only': expected b" Mount memory:1M "{'read_only': <'yes'>}"
expect_error InvalidArgument "option 'size': size '12Q'" Mount memory:1M "{'size': <'12Q'>}"
expect_error InvalidArgument "chunk size 3000 is not a power of two" Mount memory:1M "{'chunk_size': <uint64 3000>}"
expect_error InvalidArgument "size 2 MiB was asked but backend 'memory:1M' has 1 MiB" Mount memory:1M "{'size': <'2M'>}"
expect_error InvalidArgument "unknown option 'size'" Export memory:1M 127.0.0.1:0 "{'size': <uint64 1>}"
expect_error InvalidArgument "option 'name': expected s" Export memory:1M 127.0.0.1:0 "{'name': <uint32 7>}"
expect_error InvalidArgument "listen address is empty" Export memory:1M "''" '{}'
expect_error InvalidArgument "is not one of trace" SetLogLevel loud

if [ ! -e /sys/module/nbd ]; then
	echo "== without the kernel's nbd driver a mount is NotSupported, and nothing is left behind"
	expect_error NotSupported "" Mount memory:1M '{}'
fi

echo "== a wrong signature is refused by the bus library before our code runs"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 Mount s memory:1M >"$TEST_TMP/reply" 2>&1 \
	&& fail "Mount with signature s succeeded"
daemon_alive

echo "== objects that do not exist"
busctl --system call org.r3map.r3mapd /org/r3map/mounts/7 org.r3map.Mount1 Unmount >"$TEST_TMP/reply" 2>&1 \
	&& fail "Unmount of a missing mount succeeded"
expect_r3ctl 5 unmount 7
expect_r3ctl 5 --json status /dev/nbd9
[ "$(json_error)" = org.r3map.Error.NotFound ] || fail "status: $(cat "$TEST_TMP/out")"

echo "== nothing was created by all of that"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListMounts | grep -qx 'ao 0' || fail "mounts left"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports | grep -qx 'ao 0' || fail "exports left"
stop_r3mapd d
echo PASS
