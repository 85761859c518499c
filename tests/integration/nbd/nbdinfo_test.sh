#!/usr/bin/env bash
# nbdinfo (libnbd) against r3serve: protocol, capabilities, export list, allocation map.
source "$(dirname "$0")/../lib.sh"
require nbdinfo qemu-io python3

sock="$TEST_TMP/s.sock"
start_r3serve srv --socket "$sock" --name main --description "first disk" \
	memory:64M scratch=memory:1G "files=dir:$TEST_TMP/chunks?size=32M&chunk=64K"
uri=$(unix_uri "$sock" main)

echo "== nbdinfo --json"
nbdinfo --json "$uri" >"$TEST_TMP/info.json"
python3 - "$TEST_TMP/info.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
assert info["protocol"] == "newstyle-fixed", info["protocol"]
assert info["structured"] is True
exp = info["exports"][0]
assert exp["export-name"] == "main", exp
assert exp["export-size"] == 64 << 20, exp["export-size"]
assert exp["description"] == "first disk", exp.get("description")
for key in ["can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_cache",
            "can_multi_conn", "can_df"]:
    assert exp[key] is True, key
assert exp["is_read_only"] is False
assert exp["block_size_minimum"] == 1
assert exp["block_size_preferred"] == 4096
assert exp["block_size_maximum"] == 32 << 20
print("json ok")
PY

echo "== nbdinfo --can"
for cap in connect read write flush fua trim zero fast-zero cache multi-conn structured-reply df; do
	nbdinfo --can "$cap" "$uri" || fail "--can $cap says no"
done
nbdinfo --is read-only "$uri" && fail "export claims to be read-only"

echo "== nbdinfo --list"
nbdinfo --list --json "$(unix_uri "$sock")" >"$TEST_TMP/list.json"
python3 - "$TEST_TMP/list.json" <<'PY'
import json, sys
exports = {e["export-name"]: e["export-size"] for e in json.load(open(sys.argv[1]))["exports"]}
assert exports == {"main": 64 << 20, "scratch": 1 << 30, "files": 32 << 20}, exports
print("list ok:", exports)
PY

echo "== default export is the first one"
[ "$(nbdinfo --size "$(unix_uri "$sock")")" = $((64 << 20)) ] || fail "default export size"

echo "== unknown export is refused"
nbdinfo --size "$(unix_uri "$sock" nosuch)" 2>"$TEST_TMP/err" && fail "unknown export accepted"
grep -qi "nosuch" "$TEST_TMP/err" || { cat "$TEST_TMP/err"; fail "error does not name the export"; }

echo "== nbdinfo --map on sparse backends"
for exp in main files; do
	u=$(unix_uri "$sock" "$exp")
	qemu-io -f raw -c 'write -P 0x5a 1M 512K' -c 'write -P 0x33 8M 64K' "$u" >/dev/null
	nbdinfo --map --json "$u" >"$TEST_TMP/map-$exp.json"
	python3 - "$TEST_TMP/map-$exp.json" "$exp" <<'PY'
import json, sys
extents = json.load(open(sys.argv[1]))
data = [(e["offset"], e["length"]) for e in extents if e["type"] & 1 == 0]
holes = [(e["offset"], e["length"]) for e in extents if e["type"] == 3]
def covered(off, length):
    return any(o <= off and off + length <= o + l for o, l in data)
assert covered(1 << 20, 512 << 10), (sys.argv[2], data)
assert covered(8 << 20, 64 << 10), (sys.argv[2], data)
assert holes and holes[0][0] == 0, (sys.argv[2], holes)
total = sum(e["length"] for e in extents)
print(sys.argv[2], "map ok:", len(data), "data extents,", len(holes), "holes,", total, "bytes")
PY
done

echo "== read-only export"
ro="$TEST_TMP/ro.sock"
start_r3serve ro --socket "$ro" --read-only memory:16M
nbdinfo --is read-only "$(unix_uri "$ro")" || fail "read-only export not flagged"
nbdinfo --can write "$(unix_uri "$ro")" && fail "read-only export says it can write"
nbdinfo --can trim "$(unix_uri "$ro")" && fail "read-only export offers trim"

stop_r3serve srv
stop_r3serve ro
echo PASS
