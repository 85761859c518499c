#!/usr/bin/env bash
# nbdcopy of 256 MiB of random data into r3serve and back, over UNIX and TCP, single and
# multi-connection; compared byte for byte.
source "$(dirname "$0")/../lib.sh"
require nbdcopy cmp

src="$TEST_TMP/src.bin"
head -c 256M /dev/urandom >"$src"

sock="$TEST_TMP/s.sock"
start_r3serve unix --socket "$sock" memory:256M "disk=file:$TEST_TMP/disk.img?size=256M"
start_r3serve tcp --listen 127.0.0.1:0 memory:256M
tcp="nbd://$(tcp_address tcp)"

check_round_trip() {
	local uri=$1
	shift
	rm -f "$TEST_TMP/back.bin"
	nbdcopy "$@" "$src" "$uri"
	nbdcopy "$@" "$uri" "$TEST_TMP/back.bin"
	cmp "$src" "$TEST_TMP/back.bin" || fail "data differs after round trip via $uri $*"
	echo "ok: $uri $*"
}

check_round_trip "$(unix_uri "$sock")"
check_round_trip "$(unix_uri "$sock")" --connections=4 --requests=64
check_round_trip "$(unix_uri "$sock" disk)" --connections=4 --requests=64
check_round_trip "$tcp"
check_round_trip "$tcp" --connections=4 --requests=64

# The file backend must hold the data after the server is gone.
stop_r3serve unix
cmp "$src" "$TEST_TMP/disk.img" || fail "file backend lost data"
echo PASS
