#!/usr/bin/env bash
# The TLS matrix, for NBD (r3serve --listen, STARTTLS) and r3map's transport (r3serve --r3):
# an expired certificate, a wrong CA, a wrong name, a TLS 1.2-only client, clear text
# against TLS and TLS against clear text. Each refusal is checked on both sides: what the
# client says and what the server logs. TLS versions: NBD takes 1.2 and 1.3 (the NBD spec
# makes 1.2 a MUST); the r3 transport takes 1.3 only, so a 1.2-only client is refused.
source "$(dirname "$0")/lib_tls.sh"
require nbdinfo qemu-img openssl python3
make_certs
certs="$TEST_TMP/certs"
client_dir good ca
client_dir rogue rogue-ca
client_dir expired-client ca expired-client
tls_of() { echo --tls-cert "$certs/$1.pem" --tls-key "$certs/$1.key"; }
hung_up="the client hung up in the handshake"

echo "== NBD: expired server certificate"
start_r3serve nexp --listen 127.0.0.1:0 $(tls_of expired) memory:1M
expect_client_fails nexp-qemu "not trusted\|expired" qemu_x509 "$(port_of nexp)" "$TEST_TMP/good" info
expect_client_fails nexp-probe "certificate has expired" python3 "$TLS_PROBE" 127.0.0.1 "$(port_of nexp)" --ca "$certs/ca.pem"
expect_logged nexp "alert certificate expired (the peer does not accept our certificate)"
expect_logged nexp "left right after the TLS handshake: it may not accept"

echo "== NBD: expired client certificate (--tls-ca)"
start_r3serve nmtls --listen 127.0.0.1:0 $(tls_of server) --tls-ca "$certs/ca.pem" memory:1M
expect_client_fails nexpc-nbdinfo "TLS" nbdinfo --size "nbds://$(tcp_address nmtls)/?tls-certificates=$TEST_TMP/expired-client"
expect_logged nmtls "refused: TLS handshake failed: certificate verify failed (certificate has expired)"

echo "== NBD: wrong CA"
start_r3serve ngood --listen 127.0.0.1:0 $(tls_of server) memory:1M
expect_client_fails nca-nbdinfo "certificate verification" nbdinfo --size "nbds://$(tcp_address ngood)/?tls-certificates=$TEST_TMP/rogue"
expect_client_fails nca-qemu "known issuer" qemu_x509 "$(port_of ngood)" "$TEST_TMP/rogue" info
expect_logged ngood "$hung_up"

echo "== NBD: wrong name"
start_r3serve nname --listen 127.0.0.1:0 $(tls_of wrongname) memory:1M
expect_client_fails nname-qemu "does not match the hostname 127.0.0.1" qemu_x509 "$(port_of nname)" "$TEST_TMP/good" info
expect_client_fails nname-probe "Hostname mismatch\|IP address mismatch" python3 "$TLS_PROBE" 127.0.0.1 "$(port_of nname)" \
	--ca "$certs/ca.pem"
expect_logged nname "alert bad certificate (the peer does not accept our certificate)"

echo "== NBD: a TLS 1.2-only client is served (the NBD spec requires 1.2)"
python3 "$TLS_PROBE" 127.0.0.1 "$(port_of ngood)" --ca "$certs/ca.pem" --max-tls 1.2 >"$TEST_TMP/v12" || fail "TLS 1.2 refused"
grep -q "TLS on: TLSv1.2" "$TEST_TMP/v12" && grep -q "export size 1048576" "$TEST_TMP/v12" || fail "no TLS 1.2 session"
python3 "$TLS_PROBE" 127.0.0.1 "$(port_of ngood)" --ca "$certs/ca.pem" --min-tls 1.3 >"$TEST_TMP/v13" || fail "TLS 1.3 refused"
grep -q "TLS on: TLSv1.3" "$TEST_TMP/v13" || fail "no TLS 1.3 session"
echo "ok: TLS 1.2 and 1.3 sessions"

echo "== NBD: clear text against TLS"
expect_client_fails nplain-nbdinfo "server requires TLS" nbdinfo --size "nbd://$(tcp_address ngood)/"
expect_client_fails nplain-qemu "TLS negotiation required" qemu-img info "nbd://$(tcp_address ngood)/"
expect_logged ngood "refused: this server requires TLS"

echo "== NBD: TLS against clear text"
start_r3serve nclear --listen 127.0.0.1:0 memory:1M
expect_client_fails nclear-nbdinfo "server refused TLS" nbdinfo --size "nbds://$(tcp_address nclear)/?tls-certificates=$TEST_TMP/good"
expect_client_fails nclear-qemu "TLS\|tls" qemu_x509 "$(port_of nclear)" "$TEST_TMP/good" info
expect_client_fails nclear-probe "STARTTLS refused: POLICY: TLS is off on this server" \
	python3 "$TLS_PROBE" 127.0.0.1 "$(port_of nclear)" --ca "$certs/ca.pem"
expect_logged nclear "refused NBD_OPT_STARTTLS: TLS is off on this server"

# r3serve --socket with an r3:// backend is the r3 client; it must fail to start.
r3_client() { # NAME PATTERN URI
	expect_refused "$1" "$2" --socket "$TEST_TMP/$1.sock" "$3"
}

echo "== r3: expired server certificate"
start_r3serve rexp --r3 --listen 127.0.0.1:0 $(tls_of expired) memory:1M
r3_client rexp-c "certificate verify failed (certificate has expired)" "r3://$(tcp_address rexp)/?tls-ca=$certs/ca.pem"
expect_logged rexp "alert certificate expired (the peer does not accept our certificate)"

echo "== r3: expired client certificate"
start_r3serve rmtls --r3 --listen 127.0.0.1:0 $(tls_of server) --tls-ca "$certs/ca.pem" memory:1M
r3_client rexpc-c "refused the TLS session" \
	"r3://$(tcp_address rmtls)/?tls-ca=$certs/ca.pem&tls-cert=$certs/expired-client.pem&tls-key=$certs/expired-client.key"
expect_logged rmtls "certificate verify failed (certificate has expired)"

echo "== r3: wrong CA"
start_r3serve rgood --r3 --listen 127.0.0.1:0 $(tls_of server) memory:1M
r3_client rca-c "certificate verify failed (unable to get local issuer certificate)" \
	"r3://$(tcp_address rgood)/?tls-ca=$certs/rogue-ca.pem"
expect_logged rgood "alert unknown ca (the peer does not accept our certificate)"

echo "== r3: wrong name"
start_r3serve rname --r3 --listen 127.0.0.1:0 $(tls_of wrongname) memory:1M
r3_client rname-ip "certificate verify failed (IP address mismatch)" "r3://$(tcp_address rname)/?tls-ca=$certs/ca.pem"
r3_client rname-dns "certificate verify failed (hostname mismatch)" "r3://localhost:$(port_of rname)/?tls-ca=$certs/ca.pem"
expect_logged rname "alert bad certificate (the peer does not accept our certificate)"

echo "== r3: a TLS 1.2-only client is refused (r3 is TLS 1.3 only)"
expect_client_fails r12 "alert protocol version" \
	openssl s_client -tls1_2 -connect "$(tcp_address rgood)" -CAfile "$certs/ca.pem" </dev/null
expect_logged rgood "refused: TLS handshake failed: unsupported protocol (no TLS version both sides take)"
openssl s_client -tls1_3 -connect "$(tcp_address rgood)" -CAfile "$certs/ca.pem" </dev/null >"$TEST_TMP/r13" 2>&1 || true
grep -q "Protocol  *: TLSv1.3\|TLSv1.3" "$TEST_TMP/r13" || { cat "$TEST_TMP/r13" >&2; fail "r3: no TLS 1.3 session"; }
echo "ok: r3 takes TLS 1.3"

echo "== r3: clear text against TLS, TLS against clear text"
start_r3serve rclear --r3 --listen 127.0.0.1:0 memory:1M
r3_client rplain-c "this server requires TLS" "r3://$(tcp_address rgood)/"
expect_logged rgood "refused: this server requires TLS"
r3_client rtls-c "does it use TLS" "r3://$(tcp_address rclear)/?tls-ca=$certs/ca.pem"
expect_logged rclear "refused: the client started TLS"

for s in nexp nmtls ngood nname nclear rexp rmtls rgood rname rclear; do stop_r3serve "$s"; done
echo PASS
