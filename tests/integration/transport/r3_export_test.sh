#!/usr/bin/env bash
# r3serve --r3 exports a backend; r3serve --socket serves it locally as r3://. nbdcopy round
# trips in plain TCP, TLS, mutual TLS and token mode; a wrong CA, a missing or foreign
# client certificate, a wrong token and a plaintext client are refused with a clear message
# on both sides while the export keeps serving the good clients.
source "$(dirname "$0")/lib_transport.sh"
require nbdcopy cmp
make_certs
certs="$TEST_TMP/certs"
printf 'sekrit-%s\n' "$RANDOM$RANDOM" >"$TEST_TMP/token"
printf 'wrong\n' >"$TEST_TMP/wrong-token"
chmod 600 "$TEST_TMP/token" "$TEST_TMP/wrong-token"
head -c 64M /dev/urandom >"$TEST_TMP/src.bin"

# through EXPORT-NAME R3-URI: r3serve --socket on the r3:// URI, a round trip, stop.
through() {
	local name=$1 uri=$2
	start_r3serve "$name" --socket "$TEST_TMP/$name.sock" "$uri"
	round_trip "$TEST_TMP/src.bin" "$(unix_uri "$TEST_TMP/$name.sock")"
	stop_r3serve "$name"
	echo "ok: round trip through $uri"
}

echo "== plain TCP, file backend: the data is in the export's file"
start_r3serve plain --r3 --listen 127.0.0.1:0 --name disk "file:$TEST_TMP/plain.img?size=64M"
plain=$(tcp_address plain)
through p1 "r3://$plain/disk?connections=2"
cmp "$TEST_TMP/src.bin" "$TEST_TMP/plain.img" || fail "export file differs"
expect_refused noexport "no export named 'other'" --socket "$TEST_TMP/x.sock" "r3://$plain/other"

echo "== TLS"
start_r3serve tls --r3 --listen 127.0.0.1:0 --name disk --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
	memory:64M
tls=$(tcp_address tls)
through t1 "r3://$tls/disk?tls-ca=$certs/ca.pem"
expect_refused wrongca "certificate verify failed" --socket "$TEST_TMP/x.sock" "r3://$tls/disk?tls-ca=$certs/rogue-ca.pem"
expect_refused plaintext "this server requires TLS" --socket "$TEST_TMP/x.sock" "r3://$tls/disk"
expect_refused tlstoplain "does it use TLS" --socket "$TEST_TMP/x.sock" "r3://$plain/disk?tls-ca=$certs/ca.pem"
grep -q "refused: TLS handshake failed: .*unknown ca" "$TEST_TMP/tls.log" || fail "export did not log the rejected CA"
grep -q "refused: this server requires TLS" "$TEST_TMP/tls.log" || fail "export did not log the plaintext client"
grep -q "refused: the client started TLS" "$TEST_TMP/plain.log" || fail "plain export did not log the TLS client"
through t2 "r3://$tls/disk?tls-ca=$certs/ca.pem"

echo "== mutual TLS"
start_r3serve mtls --r3 --listen 127.0.0.1:0 --name disk --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
	--tls-ca "$certs/ca.pem" memory:64M
mtls=$(tcp_address mtls)
through m1 "r3://$mtls/disk?tls-ca=$certs/ca.pem&tls-cert=$certs/client.pem&tls-key=$certs/client.key"
expect_refused nocert "refused the TLS session" --socket "$TEST_TMP/x.sock" "r3://$mtls/disk?tls-ca=$certs/ca.pem"
expect_refused roguecert "refused the TLS session" --socket "$TEST_TMP/x.sock" \
	"r3://$mtls/disk?tls-ca=$certs/ca.pem&tls-cert=$certs/rogue-client.pem&tls-key=$certs/rogue-client.key"
grep -q "peer did not return a certificate" "$TEST_TMP/mtls.log" || fail "export did not log the missing certificate"
grep -q "certificate verify failed" "$TEST_TMP/mtls.log" || fail "export did not log the foreign certificate"
through m2 "r3://$mtls/disk?tls-ca=$certs/ca.pem&tls-cert=$certs/client.pem&tls-key=$certs/client.key"

echo "== token (with TLS, and without)"
start_r3serve tok --r3 --listen 127.0.0.1:0 --name disk --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
	--token-file "$TEST_TMP/token" memory:64M
tok=$(tcp_address tok)
through k1 "r3://$tok/disk?tls-ca=$certs/ca.pem&token-file=$TEST_TMP/token"
expect_refused wrongtoken "the token does not match" --socket "$TEST_TMP/x.sock" \
	"r3://$tok/disk?tls-ca=$certs/ca.pem&token-file=$TEST_TMP/wrong-token"
expect_refused notoken "requires a token" --socket "$TEST_TMP/x.sock" "r3://$tok/disk?tls-ca=$certs/ca.pem"
grep -q "authentication failed: the token does not match" "$TEST_TMP/tok.log" || fail "export did not log the wrong token"
through k2 "r3://$tok/disk?tls-ca=$certs/ca.pem&token-file=$TEST_TMP/token"
start_r3serve tokplain --r3 --listen 127.0.0.1:0 --token-file "$TEST_TMP/token" memory:64M
grep -q "token travels in clear text" "$TEST_TMP/tokplain.log" || fail "no clear-text token warning"
through k3 "r3://$(tcp_address tokplain)/?token-file=$TEST_TMP/token"

echo "== bad export options exit 2 or 1 with a message"
status=0
"$R3SERVE" --r3 --socket "$TEST_TMP/x.sock" memory:1M 2>"$TEST_TMP/o.log" || status=$?
[ "$status" -eq 2 ] && grep -q "give --listen" "$TEST_TMP/o.log" || fail "--r3 --socket not refused"
status=0
"$R3SERVE" --listen 127.0.0.1:0 --token-file x memory:1M 2>"$TEST_TMP/o.log" || status=$?
[ "$status" -eq 2 ] && grep -q "goes with --r3" "$TEST_TMP/o.log" || fail "a token without --r3 not refused"
status=0
"$R3SERVE" --r3 --listen 127.0.0.1:0 --tls=on memory:1M 2>"$TEST_TMP/o.log" || status=$?
[ "$status" -eq 2 ] && grep -q "are for NBD" "$TEST_TMP/o.log" || fail "--tls with --r3 not refused"
expect_refused badkey "does not belong to" --r3 --listen 127.0.0.1:0 --tls-cert "$certs/server.pem" \
	--tls-key "$certs/client.key" memory:1M

for s in plain tls mtls tok tokplain; do stop_r3serve "$s"; done
echo PASS
