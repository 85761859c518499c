#!/usr/bin/env bash
# A live migration between two r3migrate processes, read back with real NBD clients: a
# writer keeps writing records through the seeder's NBD export while a leecher pulls it;
# after the handover the seeder refuses writes (EROFS, EPERM over NBD), every acknowledged record is on the
# leecher, and the leecher's export equals the seeder's final file byte for byte. A second
# leecher, finalized by hand (SIGUSR1) after the first took ownership, ends as a read-only
# copy with the same bytes.
source "$(dirname "$0")/../lib.sh"
require nbdcopy nbdsh cmp python3
: "${R3MIGRATE:?}"

src="$TEST_TMP/src.img"
head -c 64M /dev/urandom >"$src"

"$R3MIGRATE" seed "file:$src" --listen 127.0.0.1:0 --export "unix:$TEST_TMP/seed.sock" \
	--on-finalize "touch $TEST_TMP/suspended" >"$TEST_TMP/seed.out" 2>"$TEST_TMP/seed.log" &
track $!
wait_for_file "$TEST_TMP/seed.out" || { cat "$TEST_TMP/seed.log" >&2; fail "the seeder did not start"; }
for _ in $(seq 50); do grep -q '^r3://' "$TEST_TMP/seed.out" && break; sleep 0.1; done
uri=$(grep '^r3://' "$TEST_TMP/seed.out")

# The writer: 4 KiB records at random offsets until the seeder refuses (the handover); it
# keeps the last acknowledged record of each offset.
cat >"$TEST_TMP/writer.py" <<'PY'
import json, os, random, sys
rng = random.Random(5)
acked = {}
try:
    while not os.path.exists(sys.argv[2]):
        off = rng.randrange(64 * 1024 * 1024 // 4096) * 4096
        rec = rng.randbytes(4096)
        h.pwrite(rec, off)
        acked[off] = rec.hex()
except nbd.Error as e:
    print("writer stopped:", e, file=sys.stderr)
json.dump(acked, open(sys.argv[1], "w"))
PY
nbdsh -u "nbd+unix:///?socket=$TEST_TMP/seed.sock" -c "
import sys
sys.argv = ['w', '$TEST_TMP/acked.json', '$TEST_TMP/stop-writer']
exec(open('$TEST_TMP/writer.py').read())" 2>"$TEST_TMP/writer.log" &
writer=$!
track $writer
sleep 0.5

"$R3MIGRATE" pull "$uri" --export "unix:$TEST_TMP/a.sock" --downtime 50ms --max-rounds 10 --json \
	>"$TEST_TMP/a.out" 2>"$TEST_TMP/a.log" &
track $!
"$R3MIGRATE" pull "$uri" --export "unix:$TEST_TMP/b.sock" --finalize manual --json \
	>"$TEST_TMP/b.out" 2>"$TEST_TMP/b.log" &
b=$!
track $b

# The owner finishes by itself.
for _ in $(seq 600); do grep -q '"phase"' "$TEST_TMP/a.out" && break; sleep 0.1; done
grep -q '"phase":"complete"' "$TEST_TMP/a.out" || { cat "$TEST_TMP/a.log" >&2; fail "leecher a did not complete"; }
grep -q '"owner":true' "$TEST_TMP/a.out" || fail "leecher a does not own the region"
[ -e "$TEST_TMP/suspended" ] || fail "the seeder did not run its --on-finalize hook"
echo "ok: leecher a took ownership: $(tail -n1 "$TEST_TMP/a.out")"

touch "$TEST_TMP/stop-writer"
wait $writer || fail "the writer failed"
grep -qi "read-only\|EROFS\|EPERM" "$TEST_TMP/writer.log" ||
	{ cat "$TEST_TMP/writer.log" >&2; fail "the writer was not stopped by the handover"; }

nbdcopy "nbd+unix:///?socket=$TEST_TMP/a.sock" "$TEST_TMP/a.img"
cmp "$src" "$TEST_TMP/a.img" || fail "leecher a differs from the seeder's final bytes"
python3 - "$TEST_TMP/acked.json" "$TEST_TMP/a.img" <<'PY' || fail "an acknowledged record is missing on leecher a"
import json, sys
acked = json.load(open(sys.argv[1]))
img = open(sys.argv[2], "rb").read()
assert acked, "the writer wrote nothing"
bad = [o for o, rec in acked.items() if img[int(o):int(o) + 4096].hex() != rec]
assert not bad, f"{len(bad)} of {len(acked)} records differ"
print(f"ok: all {len(acked)} acknowledged records are on the leecher")
PY

# The other leecher: finalized by hand, another owns: a read-only copy of the final state.
kill -USR1 $b
for _ in $(seq 600); do grep -q '"phase"' "$TEST_TMP/b.out" && break; sleep 0.1; done
grep -q '"phase":"complete"' "$TEST_TMP/b.out" || { cat "$TEST_TMP/b.log" >&2; fail "leecher b did not complete"; }
grep -q '"owner":false' "$TEST_TMP/b.out" || fail "leecher b claims ownership"
nbdcopy "nbd+unix:///?socket=$TEST_TMP/b.sock" "$TEST_TMP/b.img"
cmp "$src" "$TEST_TMP/b.img" || fail "leecher b differs from the final bytes"
if nbdsh -u "nbd+unix:///?socket=$TEST_TMP/b.sock" -c 'h.pwrite(b"x" * 4096, 0)' 2>/dev/null; then
	fail "the read-only copy took a write"
fi
echo "ok: leecher b is a read-only copy of the final state"

# The new owner takes writes.
nbdsh -u "nbd+unix:///?socket=$TEST_TMP/a.sock" -c 'h.pwrite(b"y" * 4096, 0)' || fail "the owner refused a write"
echo "ok: the owner writes"
