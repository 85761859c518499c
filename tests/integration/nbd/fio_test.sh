#!/usr/bin/env bash
# fio's nbd engine: random read/write with crc32c verification, against memory and file.
source "$(dirname "$0")/../lib.sh"
require fio
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio lacks the nbd engine"

sock="$TEST_TMP/s.sock"
start_r3serve srv --socket "$sock" memory:128M "f=file:$TEST_TMP/f.img?size=128M"

for exp in "" f; do
	fio --name=verify --ioengine=nbd --uri="$(unix_uri "$sock" "$exp")" --rw=randrw --rwmixread=50 \
		--bs=4k --bsrange=4k-64k --iodepth=16 --numjobs=1 --size=64M --io_size=128M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --output="$TEST_TMP/fio-$exp.txt" ||
		{ cat "$TEST_TMP/fio-$exp.txt"; fail "fio failed on '$exp'"; }
	grep -q "err= 0" "$TEST_TMP/fio-$exp.txt" || { cat "$TEST_TMP/fio-$exp.txt"; fail "fio reported errors"; }
	echo "ok: '$exp'"
done
stop_r3serve srv
echo PASS
