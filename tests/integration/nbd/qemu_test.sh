#!/usr/bin/env bash
# qemu-io and qemu-img against r3serve: pattern writes and reads, write -z, discard, flush,
# and qemu-img compare against a local copy.
source "$(dirname "$0")/../lib.sh"
require qemu-io qemu-img

sock="$TEST_TMP/s.sock"
start_r3serve srv --socket "$sock" memory:64M "f=file:$TEST_TMP/f.img?size=64M" "d=dir:$TEST_TMP/d?size=64M&chunk=16K"

for exp in "" f d; do
	uri=$(unix_uri "$sock" "$exp")
	echo "== export '$exp'"
	out=$(qemu-io -f raw \
		-c 'write -P 0xab 0 1M' \
		-c 'write -P 0xcd 1000 3000' \
		-c 'write -P 0xef 63M 1M' \
		-c 'read -P 0xab 4000 1044576' \
		-c 'read -P 0xcd 1000 3000' \
		-c 'read -P 0xef 63M 1M' \
		-c 'write -z 2M 1M' \
		-c 'read -P 0 2M 1M' \
		-c 'write -P 0x11 5M 128K' \
		-c 'discard 5M 128K' \
		-c 'read -P 0 5M 128K' \
		-c 'write -z -u 6M 64K' \
		-c 'read -P 0 6M 64K' \
		-c 'flush' \
		-c 'aio_write -P 0x77 10M 64K' -c 'aio_write -P 0x78 11M 64K' -c 'aio_flush' \
		-c 'read -P 0x77 10M 64K' -c 'read -P 0x78 11M 64K' \
		"$uri" 2>&1)
	echo "$out" | grep -Eqi 'fail|error|pattern' && { echo "$out"; fail "qemu-io on '$exp'"; }

	# Build the same image locally and let qemu-img compare the two.
	ref="$TEST_TMP/ref-$exp.img"
	qemu-img create -f raw "$ref" 64M >/dev/null
	qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 1000 3000' -c 'write -P 0xef 63M 1M' \
		-c 'write -z 2M 1M' -c 'write -P 0x77 10M 64K' -c 'write -P 0x78 11M 64K' "$ref" >/dev/null
	qemu-img compare -f raw -F raw "$ref" "$uri" || fail "qemu-img compare on '$exp'"
	# And a difference must be found when there is one.
	qemu-io -f raw -c 'write -P 0x01 30M 512' "$uri" >/dev/null
	qemu-img compare -q -f raw -F raw "$ref" "$uri" && fail "qemu-img compare missed a difference"
	echo "ok: '$exp'"
done

qemu-img info "$(unix_uri "$sock" d)" | grep -q "virtual size: 64 MiB" || fail "qemu-img info size"
stop_r3serve srv
echo PASS
