#!/usr/bin/env bash
# Daemon NBD exports over TLS: the Export options tls, tls_cert, tls_key, tls_ca and
# tls_psk, tried with libnbd; clear text refused where TLS is required; bad option values
# refused with a reason; only root may name the files; the clear-text warning off loopback.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require nbdinfo nbdcopy psktool gdbus cmp
[ "$(id -u)" -eq 0 ] || skip "the daemon takes TLS files from root callers only"

nobody=65534
group=4242
getent passwd $nobody >/dev/null || skip "user $nobody is needed"
getent group $group >/dev/null && skip "gid $group exists here; this test wants its own"
certs="$TEST_TMP/certs"
"$R3MAP_SOURCE_DIR/tests/support/make_test_certs.sh" "$certs"
mkdir -p "$TEST_TMP/client"
cp "$certs/ca.pem" "$TEST_TMP/client/ca-cert.pem"
psktool -u alice -p "$TEST_TMP/keys.psk" >/dev/null
head -c 8M /dev/urandom >"$TEST_TMP/src"
echo "{\"access_group\": $group}" >"$TEST_TMP/r3mapd.json"
with_group_members "r3map-it:x:$group:$(getent passwd $nobody | cut -d: -f1)"
# The open policy lets the group member through to the daemon, which decides itself.
start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"

# export OPTIONS: Export memory:8M on 127.0.0.1:0 with the a{sv} OPTIONS (GVariant text);
# prints the bound address.
export_with() {
	local path
	path=$(gdbus call --system --dest org.r3map.r3mapd --object-path /org/r3map \
		--method org.r3map.Manager1.Export memory:8M 127.0.0.1:0 "$1" | sed -n "s/^(objectpath '\(.*\)',)$/\1/p")
	[ -n "$path" ] || fail "Export $1 failed"
	busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Export1 Listen | sed 's/^s "\(.*\)"$/\1/'
}

echo "== X.509, required by default"
x509=$(export_with "{'tls_cert': <'$certs/server.pem'>, 'tls_key': <'$certs/server.key'>}")
nbdcopy "$TEST_TMP/src" "nbds://$x509/?tls-certificates=$TEST_TMP/client"
nbdcopy "nbds://$x509/?tls-certificates=$TEST_TMP/client" "$TEST_TMP/back"
cmp "$TEST_TMP/src" "$TEST_TMP/back" || fail "round trip over TLS differs"
nbdinfo --size "nbd://$x509/" >"$TEST_TMP/plain" 2>&1 && fail "clear text was served"
grep -q "server requires TLS" "$TEST_TMP/plain" || fail "clear text: $(cat "$TEST_TMP/plain")"
grep -q "refused: this server requires TLS" "$TEST_TMP/d.log" || fail "the daemon did not log the clear-text client"
echo "ok: TLS served, clear text refused"

echo "== PSK, and tls=on"
psk=$(export_with "{'tls_psk': <'$TEST_TMP/keys.psk'>}")
nbdinfo --size "nbds://alice@$psk/?tls-psk-file=$TEST_TMP/keys.psk" | grep -qx 8388608 || fail "PSK export"
opt=$(export_with "{'tls': <'on'>, 'tls_cert': <'$certs/server.pem'>, 'tls_key': <'$certs/server.key'>}")
nbdinfo --size "nbd://$opt/" | grep -qx 8388608 || fail "tls=on: clear text not served"
nbdinfo --size "nbds://$opt/?tls-certificates=$TEST_TMP/client" | grep -qx 8388608 || fail "tls=on: TLS not served"
echo "ok: PSK and optional TLS"

echo "== bad options are refused with a reason"
expect_error InvalidArgument "expected off, on or require" Export memory:1M 127.0.0.1:0 "{'tls': <'maybe'>}"
expect_error InvalidArgument "needs tls_cert and tls_key, or tls_psk" Export memory:1M 127.0.0.1:0 "{'tls': <'require'>}"
expect_error InvalidArgument "does not take" Export memory:1M 127.0.0.1:0 \
	"{'tls': <'off'>, 'tls_psk': <'$TEST_TMP/keys.psk'>}"
expect_error InvalidArgument "does not belong to" Export memory:1M 127.0.0.1:0 \
	"{'tls_cert': <'$certs/server.pem'>, 'tls_key': <'$certs/client.key'>}"
expect_error InvalidArgument "are for nbd exports" Export memory:1M 127.0.0.1:0 \
	"{'protocol': <'r3'>, 'tls_psk': <'$TEST_TMP/keys.psk'>}"
setpriv --reuid=$nobody --regid=$nobody --clear-groups gdbus call --system --dest org.r3map.r3mapd \
	--object-path /org/r3map --method org.r3map.Manager1.Export memory:1M 127.0.0.1:0 \
	"{'tls_psk': <'$TEST_TMP/keys.psk'>}" >"$TEST_TMP/reply" 2>&1 && fail "a non-root caller named a TLS file"
grep -q "org.r3map.Error.NotPermitted: .*may not use tls_cert, tls_key, tls_ca or tls_psk" "$TEST_TMP/reply" ||
	fail "non-root TLS files: $(cat "$TEST_TMP/reply")"
for call in "Seed memory:1M 127.0.0.1:0 {'token_file': <'$TEST_TMP/keys.psk'>}" \
	"Export memory:1M 127.0.0.1:0 {'protocol': <'r3'>, 'token_file': <'$TEST_TMP/keys.psk'>}" \
	"Pull r3://127.0.0.1:1/x?token-file=$TEST_TMP/keys.psk 127.0.0.1:0 {}"; do
	read -r method backend listen options <<<"$call"
	setpriv --reuid=$nobody --regid=$nobody --clear-groups gdbus call --system --dest org.r3map.r3mapd \
		--object-path /org/r3map --method "org.r3map.Manager1.$method" "$backend" "$listen" "$options" \
		>"$TEST_TMP/reply" 2>&1 && fail "a non-root caller named a file in $method"
	grep -q "org.r3map.Error.NotPermitted: .*may not use" "$TEST_TMP/reply" ||
		fail "non-root $method with a file: $(cat "$TEST_TMP/reply")"
done
echo "ok: refused"

echo "== clear text off loopback is warned about"
gdbus call --system --dest org.r3map.r3mapd --object-path /org/r3map --method org.r3map.Manager1.Export \
	memory:1M 0.0.0.0:0 "{}" >/dev/null || fail "wide export failed"
grep -q "without TLS: anyone who reaches this address" "$TEST_TMP/d.log" || fail "no clear-text warning"
grep -c "in clear" "$TEST_TMP/d.log" | grep -qx 1 || fail "warned about a loopback or TLS export too"
echo "ok: warned once"

stop_r3mapd d
echo PASS
