#!/usr/bin/env bash
# Refusals are not retried: a wrong token, TLS that does not verify or is on one side only
# make `r3sync push` (once or with --interval) and `r3sync hub` (at its start) exit at once
# with their own status, 3, having knocked once; a destination that is down (a transient
# error) still exits 1 after the retries. The protocol-version refusal (status 4) is
# covered by the unit tests, as no receiver here speaks another version.
source "$(dirname "$0")/../lib.sh"
require openssl
[ -x "${R3SYNC:-}" ] || skip "r3sync is not built"
"$(dirname "$0")/../../support/make_test_certs.sh" "$TEST_TMP/certs" >/dev/null 2>&1 || fail "cannot make test certificates"
certs=$TEST_TMP/certs

head -c 3M /dev/urandom >"$TEST_TMP/src.img"
printf 'the-right-token-1234\n' >"$TEST_TMP/good"
printf 'a-wrong-token-5678\n' >"$TEST_TMP/bad"
chmod 600 "$TEST_TMP/good" "$TEST_TMP/bad"

serve() { # NAME ARGS...: an r3sync serve; sets NAME_addr
	local name=$1
	shift
	"$R3SYNC" serve --listen 127.0.0.1:0 --dir "$TEST_TMP/$name" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log" &
	track $!
	wait_for_file "$TEST_TMP/$name.out" || fail "r3sync serve $name did not start"
	eval "${name}_addr=$(sed -n 's/^listening //p' "$TEST_TMP/$name.out")"
}
serve token --token-file "$TEST_TMP/good"
serve tls --tls-cert "$certs/server.pem" --tls-key "$certs/server.key"
serve plain

# expect STATUS WORDS LOG COMMAND...: COMMAND exits STATUS and says WORDS on stderr.
expect() {
	local want=$1 words=$2 log=$3 status=0
	shift 3
	"$@" >"$TEST_TMP/$log.out" 2>"$TEST_TMP/$log.err" || status=$?
	[ "$status" = "$want" ] || { cat "$TEST_TMP/$log.err" >&2; fail "$log: exit status $status, not $want"; }
	grep -q "$words" "$TEST_TMP/$log.err" || { cat "$TEST_TMP/$log.err" >&2; fail "$log: no '$words' on stderr"; }
}
refusals() { grep -c "authentication failed" "$TEST_TMP/token.log" || true; }

expect 3 "authentication refused (not retried)" once \
	"$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$token_addr" --token-file "$TEST_TMP/bad" --once
[ "$(refusals)" = 1 ] || fail "the wrong token knocked $(refusals) times, not once"
expect 3 "authentication refused" interval \
	"$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$token_addr" --token-file "$TEST_TMP/bad" --interval 100ms --json
grep -q '"error_kind":"auth"' "$TEST_TMP/interval.out" || fail "the round's JSON has no error_kind auth"
[ "$(refusals)" = 2 ] || fail "an --interval push with the wrong token knocked $(($(refusals) - 1)) times, not once"
expect 3 "authentication refused" hub \
	"$R3SYNC" hub --listen 127.0.0.1:0 --dir "$TEST_TMP/hub" --to "r3://$token_addr" --token-file "$TEST_TMP/bad"
"$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$token_addr" --token-file "$TEST_TMP/good" --once >/dev/null ||
	fail "the right token was refused"
echo "ok: a wrong token ends push (once and --interval) and hub at once, status 3"

expect 3 "TLS failed (not retried)" rogue \
	"$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$tls_addr" --tls-ca "$certs/rogue-ca.pem" --once
expect 3 "TLS failed" plain-to-tls "$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$tls_addr" --once
expect 3 "TLS failed" tls-to-plain "$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$plain_addr" --tls-ca "$certs/ca.pem" --once
"$R3SYNC" push "$TEST_TMP/src.img" --to "r3://$tls_addr" --tls-ca "$certs/ca.pem" --once >/dev/null ||
	fail "TLS with the right CA failed"
echo "ok: TLS that does not verify, or on one side only, ends push at once, status 3"

# A transient error is still retried, and exits 1.
port=$(python3 "$(dirname "$0")/sync_helpers.py" ports 1)
expect 1 "Connection refused" down "$R3SYNC" push "$TEST_TMP/src.img" --to "r3://127.0.0.1:$port" --once
echo "ok: a destination that is down is retried and exits 1"
