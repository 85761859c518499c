#!/usr/bin/env bash
# s3:// behind r3serve against s3rver (npm): a 64 MiB nbdcopy round trip, a second server
# over the same objects sees the data, trim deletes objects, and S3 errors are explained.
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
objects=$(find "$TEST_TMP/s3/bucket1/disks/vm1" -name '*._S3rver_object' | wc -l)
[ "$objects" -eq 65 ] || fail "expected 64 chunk objects and the meta object, found $objects"

echo "== trim of whole chunks deletes their objects; they read back as zeros"
qemu-io -f raw -c 'discard 0 2M' "$(unix_uri "$TEST_TMP/a.sock")" >/dev/null
objects=$(find "$TEST_TMP/s3/bucket1/disks/vm1" -name '*._S3rver_object' | wc -l)
[ "$objects" -eq 63 ] || fail "trim left $objects objects, expected 63"
qemu-io -f raw -c 'read -P 0 0 2M' "$(unix_uri "$TEST_TMP/a.sock")" | grep -q "read 2097152/2097152" ||
	fail "trimmed range does not read as zeros"
stop_r3serve a
head -c 2M /dev/zero | dd of="$TEST_TMP/src.bin" conv=notrunc status=none

echo "== a second server over the same objects sees the data"
start_r3serve b --socket "$TEST_TMP/b.sock" "s3://bucket1/disks/vm1?endpoint=$endpoint"
nbdcopy "$(unix_uri "$TEST_TMP/b.sock")" "$TEST_TMP/b.bin"
cmp "$TEST_TMP/src.bin" "$TEST_TMP/b.bin" || fail "second server sees other data"
stop_r3serve b

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
