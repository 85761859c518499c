#!/usr/bin/env bash
# s3:// behind r3serve against s3rver (npm): a 64 MiB nbdcopy round trip, a second server
# over the same objects sees the data, trim leaves empty objects, a late PUT never
# overwrites a newer write (the versioned keys), and S3 errors are explained.
# s3rver does not verify SigV4 signatures; it does insist on x-amz-content-sha256.
source "$(dirname "$0")/lib_transport.sh"
require nbdcopy cmp qemu-io

start_s3rver s3 bucket1
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
endpoint="http://127.0.0.1:$s3_port"
uri="s3://bucket1/disks/vm1?endpoint=$endpoint&size=64M&chunk=1M"
head -c 64M /dev/urandom >"$TEST_TMP/src.bin"

echo "== round trip"
start_r3serve a --socket "$TEST_TMP/a.sock" "$uri"
round_trip "$TEST_TMP/src.bin" "$(unix_uri "$TEST_TMP/a.sock")"
# The chunks that hold an object: its first 16 hex digits (a version follows).
chunk_objects() {
	find "$TEST_TMP/s3/bucket1/disks/vm1" -name '[0-9a-f]*._S3rver_object' "$@" -printf '%f\n' | cut -c1-16 | sort -u | wc -l
}
[ "$(chunk_objects)" -eq 64 ] || fail "expected objects for 64 chunks, found $(chunk_objects)"
for f in r3map.meta r3map.epoch; do
	[ -e "$TEST_TMP/s3/bucket1/disks/vm1/$f._S3rver_object" ] || fail "no $f object"
done

echo "== trim of whole chunks leaves them an empty object (no data); they read back as zeros"
qemu-io -f raw -c 'discard 0 2M' "$(unix_uri "$TEST_TMP/a.sock")" >/dev/null
[ "$(chunk_objects -size +0)" -eq 62 ] || fail "trim left data in $(( $(chunk_objects -size +0) - 62 )) more chunks than 62"
for c in 0000000000000000 0000000000000001; do
	[ -z "$(find "$TEST_TMP/s3/bucket1/disks/vm1" -name "$c*._S3rver_object" -size +0)" ] ||
		fail "chunk $c still has an object with data after the trim"
done
qemu-io -f raw -c 'read -P 0 0 2M' "$(unix_uri "$TEST_TMP/a.sock")" | grep -q "read 2097152/2097152" ||
	fail "trimmed range does not read as zeros"
stop_r3serve a
head -c 2M /dev/zero | dd of="$TEST_TMP/src.bin" conv=notrunc status=none

echo "== a second server over the same objects sees the data"
start_r3serve b --socket "$TEST_TMP/b.sock" "s3://bucket1/disks/vm1?endpoint=$endpoint"
nbdcopy "$(unix_uri "$TEST_TMP/b.sock")" "$TEST_TMP/b.bin"
cmp "$TEST_TMP/src.bin" "$TEST_TMP/b.bin" || fail "second server sees other data"
stop_r3serve b

echo "== a PUT that arrives late never overwrites a newer write of its chunk"
# The proxy holds the first PUT of chunk 3 once armed: the client times out, retries and
# is acknowledged, then writes the chunk again; the held PUT reaches s3rver after that.
proxy_port=$(free_port)
/usr/bin/python3 "$(dirname "$0")/late_put_proxy.py" "$proxy_port" "$s3_port" disks/late/0000000000000003 \
	"$TEST_TMP/arm" "$TEST_TMP/release" >"$TEST_TMP/proxy.out" 2>"$TEST_TMP/proxy.log" &
track $!
wait_port "$proxy_port" || fail "the proxy did not start"
start_r3serve late --socket "$TEST_TMP/late.sock" \
	"s3://bucket1/disks/late?endpoint=http://127.0.0.1:$proxy_port&size=8M&chunk=1M&timeout=1s"
late_uri=$(unix_uri "$TEST_TMP/late.sock")
qemu-io -f raw -c 'write -P 0xa 3M 1M' "$late_uri" >/dev/null || fail "the first write failed"
touch "$TEST_TMP/arm"
qemu-io -f raw -c 'write -P 0xb 3M 1M' "$late_uri" >/dev/null || fail "the write whose PUT was held failed"
grep -q held "$TEST_TMP/proxy.out" || fail "the proxy held no PUT"
qemu-io -f raw -c 'write -P 0xc 3M 1M' "$late_uri" >/dev/null || fail "the newer write failed"
touch "$TEST_TMP/release"
for _ in $(seq 100); do grep -q released "$TEST_TMP/proxy.out" && break; sleep 0.1; done
grep -q "released HTTP/1.1 200" "$TEST_TMP/proxy.out" || { cat "$TEST_TMP/proxy.out" >&2; fail "s3rver did not take the late PUT"; }
qemu-io -f raw -c 'read -P 0xc 3M 1M' "$late_uri" | grep -q "read 1048576/1048576" ||
	fail "after the late PUT the server reads other bytes than the newest write"
stop_r3serve late
start_r3serve late2 --socket "$TEST_TMP/late2.sock" "s3://bucket1/disks/late?endpoint=$endpoint"
qemu-io -f raw -c 'read -P 0xc 3M 1M' "$(unix_uri "$TEST_TMP/late2.sock")" | grep -q "read 1048576/1048576" ||
	fail "the late PUT overwrote the newer write of its chunk"
stop_r3serve late2
echo "ok: the late PUT did not overwrite the newer write"

echo "== errors name their cause"
expect_refused bucket "NoSuchBucket" --socket "$TEST_TMP/c.sock" "s3://nobucket/x?endpoint=$endpoint&size=1M"
expect_refused geometry "was written with chunk=1048576" --socket "$TEST_TMP/c.sock" \
	"s3://bucket1/disks/vm1?endpoint=$endpoint&chunk=64K"
AWS_ACCESS_KEY_ID= expect_refused creds "set AWS_ACCESS_KEY_ID" --socket "$TEST_TMP/c.sock" \
	"s3://bucket1/x?endpoint=$endpoint&size=1M"
expect_refused prefix "must be letters" --socket "$TEST_TMP/c.sock" "s3://bucket1/a%20b?endpoint=$endpoint&size=1M"

echo "== a certificate that does not verify is an error at once, not retried until the deadline"
require openssl
make_certs
tls_port=$(free_port)
openssl s_server -quiet -www -accept "$tls_port" -cert "$TEST_TMP/certs/server.pem" \
	-key "$TEST_TMP/certs/server.key" >/dev/null 2>&1 &
track $!
wait_port "$tls_port" || fail "openssl s_server did not start"
# The test CA is in no trust store; a retried failure would only end at the 10 min deadline.
expect_refused untrusted "SSL peer certificate" --socket "$TEST_TMP/c.sock" \
	"s3://bucket1/x?endpoint=https://127.0.0.1:$tls_port&size=1M&deadline=10m"
grep -q "retrying" "$TEST_TMP/untrusted.log" && fail "the certificate failure was retried"
echo PASS
