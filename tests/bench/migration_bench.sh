#!/usr/bin/env bash
# Live migration downtime against the dirty rate, on loopback: a seeder (r3migrate seed of a
# memory region, served over NBD on a UNIX socket) written by a paced writer (random 4 KiB
# writes through NBD at a target rate), pulled by an r3migrate leecher, per dirty rate and
# mode, BENCH_RUNS times each:
#   iterative  pre-copy rounds until the predicted downtime fits --downtime (50 ms), at most
#              30 rounds (the default);
#   one-round  r3map's design: track, one pass, finalize (--max-rounds 0).
# Per run: downtime (the leecher's measure: seeder locked → leecher unlocked), total time,
# bytes pulled ÷ region, rounds, and the dirty rate the writer reached (it is one Python
# nbdsh loop: at high targets it reports what it managed, not the target). Prints a table
# (p50/p99) and writes JSON. Not a pass/fail test. WAN emulation (RTT 5/20 ms) and QEMU's
# block mirror are not driven here (see the README).
#
#   BENCH_MODE=quick|full (full)   quick: 256M, 3 runs
#   BENCH_SIZE (1G), BENCH_RUNS (10), BENCH_RATES (MiB/s: "0 16 64 256"), BENCH_OUT
source "$(dirname "$0")/../integration/lib.sh"
require nbdsh python3
: "${R3MIGRATE:?}"

mode=${BENCH_MODE:-full}
case $mode in
quick) d_size=256M d_runs=3 ;;
full) d_size=1G d_runs=10 ;;
*) fail "BENCH_MODE must be quick or full, not '$mode'" ;;
esac
size=${BENCH_SIZE:-$d_size}
runs=${BENCH_RUNS:-$d_runs}
rates=${BENCH_RATES:-0 16 64 256}
out=${BENCH_OUT:-$PWD/migration_bench.json}

cat >"$TEST_TMP/writer.py" <<'PY'
import os, random, sys, time
rate = float(sys.argv[1]) * 1024 * 1024
stop, report = sys.argv[2], sys.argv[3]
size = h.get_size()
rng = random.Random()
buf = bytearray(os.urandom(4096))
n, start = 0, time.monotonic()
try:
    while rate > 0 and not os.path.exists(stop):
        h.pwrite(buf, rng.randrange(size // 4096) * 4096)
        n += 1
        ahead = n * 4096 / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
except nbd.Error:
    pass  # the handover: the seeder refuses writes
elapsed = time.monotonic() - start
open(report, "w").write(f"{n * 4096 / max(elapsed, 1e-9)}\n")
PY

results="$TEST_TMP/results.jsonl"
: >"$results"
run_one() {
	local rate=$1 label=$2 rounds_arg=$3 i=$4 dir="$TEST_TMP/run-$1-$2-$4"
	mkdir -p "$dir"
	"$R3MIGRATE" seed "memory:$size" --listen 127.0.0.1:0 --export "unix:$dir/seed.sock" \
		--exit-on-complete >"$dir/seed.out" 2>"$dir/seed.log" &
	local seed=$!
	track $seed
	for _ in $(seq 100); do grep -q '^r3://' "$dir/seed.out" 2>/dev/null && break; sleep 0.1; done
	local uri
	uri=$(grep '^r3://' "$dir/seed.out") || fail "the seeder did not start: $(cat "$dir/seed.log")"
	nbdsh -u "nbd+unix:///?socket=$dir/seed.sock" -c "
import sys
sys.argv = ['w', '$rate', '$dir/stop', '$dir/rate']
exec(open('$TEST_TMP/writer.py').read())" 2>"$dir/writer.log" &
	local writer=$!
	track $writer
	sleep 1 # the writer reaches its rate before the migration starts
	local t0 t1
	t0=$(date +%s.%N)
	"$R3MIGRATE" pull "$uri" --export "unix:$dir/leech.sock" --downtime 50ms $rounds_arg --json \
		>"$dir/pull.out" 2>"$dir/pull.log" &
	local pull=$!
	track $pull
	for _ in $(seq 6000); do grep -q '"phase"' "$dir/pull.out" && break; sleep 0.05; done
	t1=$(date +%s.%N)
	touch "$dir/stop"
	wait $writer || true
	kill -TERM $pull $seed 2>/dev/null || true
	wait $pull $seed 2>/dev/null || true
	python3 - "$dir/pull.out" "$dir/rate" "$rate" "$label" "$t0" "$t1" >>"$results" <<'PY'
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
p = json.loads(line)
achieved = float(open(sys.argv[2]).read() or 0) if sys.argv[3] != "0" else 0.0
print(json.dumps({"target_mib_s": float(sys.argv[3]), "mode": sys.argv[4], "phase": p["phase"],
                  "downtime_ms": p["downtime_ns"] / 1e6, "total_s": float(sys.argv[6]) - float(sys.argv[5]),
                  "sent_ratio": p["transferred_bytes"] / p["region_bytes"], "rounds": p["round"],
                  "dirty_mib_s": achieved / 2**20}))
PY
}

for rate in $rates; do
	for m in iterative one-round; do
		args=""
		[ "$m" = one-round ] && args="--max-rounds 0"
		for i in $(seq "$runs"); do
			run_one "$rate" "$m" "$args" "$i"
		done
	done
done

python3 - "$results" "$out" "$size" <<'PY'
import json, sys, datetime, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
summary = []
print(f"{'dirty MiB/s':>11} {'reached':>8} {'mode':>10} {'runs':>4} {'downtime p50':>12} {'p99':>8} "
      f"{'total s':>8} {'sent/region':>11} {'rounds':>6}")
for key in sorted({(r["target_mib_s"], r["mode"]) for r in rows}):
    rs = [r for r in rows if (r["target_mib_s"], r["mode"]) == key and r["phase"] == "complete"]
    if not rs:
        continue
    d = [r["downtime_ms"] for r in rs]
    s = {"target_mib_s": key[0], "mode": key[1], "runs": len(rs),
         "dirty_mib_s": statistics.median(r["dirty_mib_s"] for r in rs),
         "downtime_p50_ms": pct(d, 0.5), "downtime_p99_ms": pct(d, 0.99),
         "total_s": statistics.median(r["total_s"] for r in rs),
         "sent_ratio": statistics.median(r["sent_ratio"] for r in rs),
         "rounds": statistics.median(r["rounds"] for r in rs)}
    summary.append(s)
    print(f"{s['target_mib_s']:>11.0f} {s['dirty_mib_s']:>8.1f} {s['mode']:>10} {s['runs']:>4} "
          f"{s['downtime_p50_ms']:>10.1f}ms {s['downtime_p99_ms']:>6.1f}ms {s['total_s']:>8.2f} "
          f"{s['sent_ratio']:>11.2f} {s['rounds']:>6.0f}")
json.dump({"benchmark": "migration", "date": datetime.datetime.utcnow().isoformat() + "Z",
           "link": "loopback", "region": sys.argv[3], "summary": summary, "runs": rows},
          open(sys.argv[2], "w"), indent=1)
print("wrote", sys.argv[2])
PY
