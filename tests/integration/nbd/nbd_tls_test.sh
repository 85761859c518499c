#!/usr/bin/env bash
# NBD over TLS (NBD_OPT_STARTTLS) with libnbd's and qemu's TLS clients: X.509, mutual
# X.509 and PSK; --tls=on serves clients with and without TLS, --tls=require (the default
# with credentials) refuses clear text; option errors; the clear-text warning.
source "$(dirname "$0")/lib_tls.sh"
require nbdinfo nbdcopy qemu-img qemu-io psktool cmp python3
make_certs
certs="$TEST_TMP/certs"
client_dir good ca
client_dir mutual ca client
psktool -u alice -p "$TEST_TMP/keys.psk" >/dev/null
psktool -u alice -p "$TEST_TMP/otherkey.psk" >/dev/null
psktool -u mallory -p "$TEST_TMP/mallory.psk" >/dev/null
mkdir -p "$TEST_TMP/qpsk" && cp "$TEST_TMP/keys.psk" "$TEST_TMP/qpsk/keys.psk"
head -c 16M /dev/urandom >"$TEST_TMP/src.bin"
server_tls=(--tls-cert "$certs/server.pem" --tls-key "$certs/server.key")

echo "== X.509, TLS required"
start_r3serve x509 --listen 127.0.0.1:0 "${server_tls[@]}" memory:16M
addr=$(tcp_address x509)
port=$(port_of x509)
grep -q "(TLS required)" "$TEST_TMP/x509.log" || fail "r3serve did not say TLS is required"
nbdinfo --json "nbds://$addr/?tls-certificates=$TEST_TMP/good" >"$TEST_TMP/info.json"
python3 - "$TEST_TMP/info.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
assert info["TLS"] is True, info
assert info["exports"][0]["export-size"] == 16 << 20
print("ok: nbdinfo sees TLS")
PY
round_trip "$TEST_TMP/src.bin" "nbds://$addr/?tls-certificates=$TEST_TMP/good"
echo "ok: nbdcopy round trip over nbds://"
qemu-io --object "tls-creds-x509,id=tls0,endpoint=client,dir=$TEST_TMP/good" \
	--image-opts "driver=nbd,host=127.0.0.1,port=$port,tls-creds=tls0" \
	-c 'write -P 0x5a 1M 1M' -c 'read -P 0x5a 1M 1M' >"$TEST_TMP/qio.out" || fail "qemu-io over TLS failed"
qemu-img convert --object "tls-creds-x509,id=tls0,endpoint=client,dir=$TEST_TMP/good" \
	--image-opts "driver=nbd,host=127.0.0.1,port=$port,tls-creds=tls0" -O raw "$TEST_TMP/q.raw" ||
	fail "qemu-img convert over TLS failed"
cmp -n 1M "$TEST_TMP/src.bin" "$TEST_TMP/q.raw" || fail "qemu-img read other data"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); assert d[1<<20:2<<20] == b"\x5a" * (1 << 20)' "$TEST_TMP/q.raw" ||
	fail "qemu-io's write is not there"
qemu_x509 "$port" "$TEST_TMP/good" info >"$TEST_TMP/qinfo" || fail "qemu-img info over TLS failed"
grep -q "virtual size: 16 MiB" "$TEST_TMP/qinfo" || fail "qemu-img info: wrong size"
echo "ok: qemu-io and qemu-img over tls-creds-x509"
expect_client_fails plain-nbdinfo "server requires TLS" env LIBNBD_DEBUG=1 nbdinfo --size "nbd://$addr/"
grep -q "this server requires TLS: send NBD_OPT_STARTTLS first" "$TEST_TMP/plain-nbdinfo.client" ||
	fail "the server's reason did not reach libnbd"
expect_client_fails plain-nbdcopy "server requires TLS" nbdcopy "nbd://$addr/" "$TEST_TMP/x.bin"
expect_client_fails plain-qemu "TLS negotiation required" qemu-img info "nbd://$addr/"
expect_logged x509 "refused: this server requires TLS and the client sent NBD_OPT_"
expect_client_fails plain-probe "GO refused: TLS_REQD" python3 "$TLS_PROBE" 127.0.0.1 "$port" --no-starttls
round_trip "$TEST_TMP/src.bin" "nbds://$addr/?tls-certificates=$TEST_TMP/good"
echo "ok: still serving TLS clients"

echo "== mutual X.509 (--tls-ca)"
start_r3serve mtls --listen 127.0.0.1:0 "${server_tls[@]}" --tls-ca "$certs/ca.pem" memory:16M
maddr=$(tcp_address mtls)
round_trip "$TEST_TMP/src.bin" "nbds://$maddr/?tls-certificates=$TEST_TMP/mutual"
qemu_x509 "$(port_of mtls)" "$TEST_TMP/mutual" info >/dev/null || fail "qemu-img with a client certificate failed"
echo "ok: clients with a certificate are served"
expect_client_fails nocert "TLS" nbdinfo --size "nbds://$maddr/?tls-certificates=$TEST_TMP/good"
expect_logged mtls "refused: TLS handshake failed: peer did not return a certificate"

echo "== PSK (--tls-psk, psktool's file)"
start_r3serve psk --listen 127.0.0.1:0 --tls-psk "$TEST_TMP/keys.psk" memory:16M
paddr=$(tcp_address psk)
round_trip "$TEST_TMP/src.bin" "nbds://alice@$paddr/?tls-psk-file=$TEST_TMP/keys.psk"
qemu-img info --object "tls-creds-psk,id=tls0,endpoint=client,dir=$TEST_TMP/qpsk,username=alice" \
	--image-opts "driver=nbd,host=127.0.0.1,port=$(port_of psk),tls-creds=tls0" >"$TEST_TMP/qinfo" ||
	fail "qemu-img over tls-creds-psk failed"
echo "ok: libnbd and qemu with a pre-shared key"
expect_client_fails wrongkey "TLS" nbdinfo --size "nbds://alice@$paddr/?tls-psk-file=$TEST_TMP/otherkey.psk"
expect_logged psk "the client's pre-shared key differs"
expect_client_fails unknownid "TLS" nbdinfo --size "nbds://mallory@$paddr/?tls-psk-file=$TEST_TMP/mallory.psk"
expect_logged psk "TLS-PSK: the client's identity 'mallory' is not in"
expect_client_fails psk-plain "server requires TLS" nbdinfo --size "nbd://$paddr/"

echo "== --tls=on: TLS is the client's choice"
start_r3serve opt --listen 127.0.0.1:0 --tls=on "${server_tls[@]}" memory:16M
oaddr=$(tcp_address opt)
grep -q "(TLS optional)" "$TEST_TMP/opt.log" || fail "r3serve did not say TLS is optional"
nbdinfo --json "nbd://$oaddr/" | grep -q '"TLS": false' || fail "clear-text client not served"
nbdinfo --json "nbds://$oaddr/?tls-certificates=$TEST_TMP/good" | grep -q '"TLS": true' || fail "TLS client not served"
echo "ok: both served"

echo "== TLS on a UNIX socket"
start_r3serve unix --socket "$TEST_TMP/tls.sock" "${server_tls[@]}" memory:16M
round_trip "$TEST_TMP/src.bin" "nbds+unix:///?socket=$TEST_TMP/tls.sock&tls-certificates=$TEST_TMP/good"
expect_client_fails unix-plain "server requires TLS" nbdinfo --size "$(unix_uri "$TEST_TMP/tls.sock")"
echo "ok: nbds+unix://"

echo "== option errors"
usage_error() { # PATTERN ARGS...: exit 2 with PATTERN
	local pattern=$1 status=0
	shift
	"$R3SERVE" "$@" >/dev/null 2>"$TEST_TMP/o.log" || status=$?
	[ "$status" -eq 2 ] && grep -q -- "$pattern" "$TEST_TMP/o.log" || { cat "$TEST_TMP/o.log" >&2; fail "'$*' not refused with '$pattern'"; }
	echo "ok: refused: $(grep -o -- "$pattern.*" "$TEST_TMP/o.log" | head -1)"
}
usage_error "--tls=require needs --tls-cert" --listen 127.0.0.1:0 --tls=require memory:1M
usage_error "--tls=on needs" --listen 127.0.0.1:0 --tls=on memory:1M
usage_error "--tls=off does not take" --listen 127.0.0.1:0 --tls=off "${server_tls[@]}" memory:1M
usage_error "expected off, on or require" --listen 127.0.0.1:0 --tls=maybe memory:1M
usage_error "not both" --listen 127.0.0.1:0 "${server_tls[@]}" --tls-psk "$TEST_TMP/keys.psk" memory:1M
usage_error "does not take the --tls options" --device auto --tls-psk "$TEST_TMP/keys.psk" memory:1M
printf 'alice:nothex\n' >"$TEST_TMP/bad.psk"
expect_refused badpsk "expected IDENTITY:HEXKEY" --listen 127.0.0.1:0 --tls-psk "$TEST_TMP/bad.psk" memory:1M
expect_refused nopsk "tls-psk '$TEST_TMP/none.psk'" --listen 127.0.0.1:0 --tls-psk "$TEST_TMP/none.psk" memory:1M

echo "== clear text off loopback is warned about"
start_r3serve wide --listen 0.0.0.0:0 memory:1M
expect_logged wide "without TLS: anyone who reaches this address"
start_r3serve widetls --listen 0.0.0.0:0 "${server_tls[@]}" memory:1M
grep -q "without TLS\|in clear" "$TEST_TMP/widetls.log" && fail "warned although TLS is required"
grep -q "in clear" "$TEST_TMP/x509.log" && fail "warned about a loopback address"
echo "ok: only the clear-text wide listener warns"

for s in x509 mtls psk opt unix wide widetls; do stop_r3serve "$s"; done
echo PASS
