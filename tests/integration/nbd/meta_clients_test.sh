#!/usr/bin/env bash
# Meta contexts beyond base:allocation under real clients: nbdinfo --map=x-r3map:present
# and libnbd's Python binding (nbdsh) against nbd_meta_server, whose export marks known
# ranges (the MetaSource double; the managed backend will be the real one). r3serve's
# exports, which have no MetaSource, still offer base:allocation alone.
source "$(dirname "$0")/../lib.sh"
require nbdinfo nbdsh python3
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"
[ -x "${NBD_META_SERVER:-}" ] || fail "NBD_META_SERVER is not set to the test server"

size=$((16 << 20))
# In bytes, for the server and the Python checks alike; sorted, neither touching nor
# overlapping, as the server would merge them.
present="0+65536,1048576+524288,8388608+4096,16773120+4096"
dirty="1048576+4096,1200000+1"
sock="$TEST_TMP/meta.sock"
"$NBD_META_SERVER" "$sock" "$size" "x-r3map:present=$present" "x-r3map:dirty=$dirty" \
	>"$TEST_TMP/meta.out" 2>"$TEST_TMP/meta.log" &
meta_pid=$!
track "$meta_pid"
wait_for_file "$TEST_TMP/meta.out" || { cat "$TEST_TMP/meta.log" >&2; fail "nbd_meta_server did not start"; }
uri=$(unix_uri "$sock")

echo "== nbdinfo lists the contexts"
nbdinfo --json "$uri" >"$TEST_TMP/info.json"
python3 - "$TEST_TMP/info.json" <<'PY'
import json, sys
contexts = json.load(open(sys.argv[1]))["exports"][0]["contexts"]
assert contexts == ["base:allocation", "x-r3map:present", "x-r3map:dirty"], contexts
print("contexts ok:", contexts)
PY

echo "== nbdinfo --map=x-r3map:present shows exactly the marked ranges"
nbdinfo --map=x-r3map:present "$uri" >"$TEST_TMP/present.map"
cat "$TEST_TMP/present.map"
cat >"$TEST_TMP/present.want" <<'MAP'
         0       65536    1
     65536      983040    0
   1048576      524288    1
   1572864     6815744    0
   8388608        4096    1
   8392704     8380416    0
  16773120        4096    1
MAP
diff -u "$TEST_TMP/present.want" "$TEST_TMP/present.map" || fail "x-r3map:present map differs"

echo "== nbdinfo --map=x-r3map:dirty"
nbdinfo --map=x-r3map:dirty --json "$uri" >"$TEST_TMP/dirty.json"
python3 - "$TEST_TMP/dirty.json" <<'PY'
import json, sys
got = [(e["offset"], e["length"], e["type"]) for e in json.load(open(sys.argv[1]))]
want = [(0, 1048576, 0), (1048576, 4096, 1), (1052672, 147328, 0), (1200000, 1, 1),
        (1200001, (16 << 20) - 1200001, 0)]
assert got == want, got
print("dirty map ok")
PY

echo "== base:allocation is unchanged beside them"
nbdinfo --map "$uri" >"$TEST_TMP/base.map"
[ "$(cat "$TEST_TMP/base.map")" = "         0    16777216    3  hole,zero" ] || { cat "$TEST_TMP/base.map"; fail "base:allocation map"; }

echo "== an unknown context is not offered"
nbdinfo --map=x-r3map:nosuch "$uri" 2>"$TEST_TMP/err" && fail "x-r3map:nosuch was mapped"
grep -q "x-r3map:nosuch" "$TEST_TMP/err" || { cat "$TEST_TMP/err"; fail "error does not name the context"; }

echo "== nbdsh"
nbdsh -c 'h.add_meta_context("x-r3map:present")' -c "h.connect_uri('$uri')" \
	-c 'assert h.can_meta_context("x-r3map:present") and not h.can_meta_context("base:allocation")' \
	-c 'got = []' \
	-c 'h.block_status(131072, 0, lambda ctx, off, e, err: got.append((ctx, e)) or 0)' \
	-c 'assert got == [("x-r3map:present", [65536, 1, 65536, 0])], got' \
	-c 'print("nbdsh ok")'
/usr/bin/python3 "$(dirname "$0")/meta_clients_test.py" "$sock" "$size" "$present" "$dirty"

echo "== r3serve exports without a MetaSource offer base:allocation alone"
start_r3serve srv --socket "$TEST_TMP/r3.sock" memory:16M
nbdinfo --json "$(unix_uri "$TEST_TMP/r3.sock")" >"$TEST_TMP/r3.json"
python3 - "$TEST_TMP/r3.json" <<'PY'
import json, sys
contexts = json.load(open(sys.argv[1]))["exports"][0]["contexts"]
assert contexts == ["base:allocation"], contexts
PY
nbdinfo --map=x-r3map:present "$(unix_uri "$TEST_TMP/r3.sock")" 2>/dev/null && fail "r3serve offers x-r3map:present"
stop_r3serve srv

kill -TERM "$meta_pid"
status=0
wait "$meta_pid" || status=$?
[ "$status" -eq 0 ] || { cat "$TEST_TMP/meta.log" >&2; fail "nbd_meta_server exited with $status"; }
echo PASS
