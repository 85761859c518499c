#!/usr/bin/env bash
# The daemon serves r3:// (Export with protocol r3), consumes it (an NBD export of an
# r3:// backend, on the same daemon's runtime), keeps ids across a restart through its
# state directory, and holds its thread count when exports multiply.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
require nbdcopy cmp

state="$TEST_TMP/state"
echo "{\"access_group\": 4242, \"state_dir\": \"$state\"}" >"$TEST_TMP/r3mapd.json"
start_bus
start_r3mapd d --config "$TEST_TMP/r3mapd.json"

echo "== an r3 export, and its Protocol"
run_r3ctl --json export memory:16M --listen 127.0.0.1:0 --protocol r3 --name disk
[ "$rc" -eq 0 ] || { cat "$TEST_TMP/err"; fail "r3 export failed"; }
r3=$(json_field 'j["listen"]')
[ "$(json_field 'j["protocol"]')" = r3 ] || fail "protocol $(cat "$TEST_TMP/out")"
busctl --system get-property org.r3map.r3mapd /org/r3map/exports/1 org.r3map.Export1 Protocol | grep -qx 's "r3"' \
	|| fail "Protocol property"

echo "== an NBD export of r3://$r3/disk: data goes NBD -> daemon -> r3 -> daemon"
run_r3ctl export "r3://$r3/disk" --listen 127.0.0.1:0
[ "$rc" -eq 0 ] || { cat "$TEST_TMP/err"; fail "nbd export of r3:// failed"; }
nbd=$(cat "$TEST_TMP/out")
head -c 16M /dev/urandom >"$TEST_TMP/src"
nbdcopy "$TEST_TMP/src" "nbd://$nbd"
nbdcopy "nbd://$nbd" "$TEST_TMP/back"
cmp "$TEST_TMP/src" "$TEST_TMP/back" || fail "read back through r3 differs"
run_r3ctl --json exports
[ "$(json_field '[e for e in j if e["protocol"] == "r3"][0]["statistics"]["bytes_written"] >= 16<<20')" = True ] \
	|| { cat "$TEST_TMP/out"; fail "r3 export statistics"; }

echo "== bad r3 exports are refused with a reason"
expect_r3ctl 1 export memory:1M --listen 0.0.0.0:0 --protocol r3
grep -q "loopback" "$TEST_TMP/err" || fail "non-loopback r3: $(cat "$TEST_TMP/err")"
expect_r3ctl 1 export memory:1M --listen "unix:$TEST_TMP/r3.sock" --protocol r3
grep -q "HOST:PORT" "$TEST_TMP/err" || fail "unix r3: $(cat "$TEST_TMP/err")"
expect_r3ctl 1 export memory:1M --listen 127.0.0.1:0 --protocol gopher
grep -q "expected nbd or r3" "$TEST_TMP/err" || fail "unknown protocol: $(cat "$TEST_TMP/err")"

echo "== an r3 export with TLS and a token, off loopback: a client needs both (root names the files)"
"$R3MAP_SOURCE_DIR/tests/support/make_test_certs.sh" "$TEST_TMP/certs"
echo "s3cret-token" >"$TEST_TMP/token"
run_r3ctl --json export memory:4M --listen 0.0.0.0:0 --protocol r3 --name sec \
	--tls-cert "$TEST_TMP/certs/server.pem" --tls-key "$TEST_TMP/certs/server.key" --token-file "$TEST_TMP/token"
[ "$rc" -eq 0 ] || { cat "$TEST_TMP/err"; fail "r3 export with TLS failed"; }
sec_port=$(json_field 'j["listen"]' | sed 's/.*://')
secure="r3://127.0.0.1:$sec_port/sec?tls-ca=$TEST_TMP/certs/ca.pem&token-file=$TEST_TMP/token"
run_r3ctl export "$secure" --listen 127.0.0.1:0
[ "$rc" -eq 0 ] || { cat "$TEST_TMP/err"; fail "an NBD export of the TLS r3 export failed"; }
head -c 4M /dev/urandom >"$TEST_TMP/sec"
nbdcopy "$TEST_TMP/sec" "nbd://$(cat "$TEST_TMP/out")"
nbdcopy "nbd://$(cat "$TEST_TMP/out")" "$TEST_TMP/sec.back"
cmp "$TEST_TMP/sec" "$TEST_TMP/sec.back" || fail "read back through r3 over TLS differs"
expect_r3ctl 1 export "r3://127.0.0.1:$sec_port/sec?tls-ca=$TEST_TMP/certs/ca.pem" --listen 127.0.0.1:0
grep -qi "token" "$TEST_TMP/err" || fail "no token: $(cat "$TEST_TMP/err")"
expect_r3ctl 1 export "r3://127.0.0.1:$sec_port/sec" --listen 127.0.0.1:0
grep -qi "tls" "$TEST_TMP/err" || fail "plaintext against TLS: $(cat "$TEST_TMP/err")"
expect_r3ctl 1 export memory:1M --listen 127.0.0.1:0 --token-file "$TEST_TMP/token"
grep -q "token_file is for r3 exports" "$TEST_TMP/err" || fail "token on nbd: $(cat "$TEST_TMP/err")"
expect_r3ctl 1 export memory:1M --listen 127.0.0.1:0 --protocol r3 --tls-cert "$TEST_TMP/certs/server.pem"
grep -q "go together" "$TEST_TMP/err" || fail "cert without key: $(cat "$TEST_TMP/err")"
echo "ok: TLS and token on an r3 export"

echo "== threads stay bounded: 20 more exports cost their acceptors, not a pool each"
threads() { ls "/proc/$d_pid/task" | wc -l; }
before=$(threads)
for i in $(seq 20); do
	expect_r3ctl 0 export memory:1M --listen 127.0.0.1:0
done
after=$(threads)
echo "r3mapd threads: $before before, $after with 20 more NBD exports"
# An NBD export adds its accept thread; before the shared runtime each added 16 workers too.
[ $((after - before)) -le 20 ] || fail "20 exports added $((after - before)) threads"
grep -q "runtime threads" "$TEST_TMP/d.log" || fail "the ready line does not state the runtime's threads"

echo "== the id counter survives a restart"
[ -f "$state/mounts/next" ] || [ -d "$state" ] || fail "no state directory"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 ListExports >/dev/null
kill -TERM "$d_pid"
wait "$d_pid" 2>/dev/null || true
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
grep -q "no state directory" "$TEST_TMP/d.log" && fail "the state directory was not used"
echo "ok"
