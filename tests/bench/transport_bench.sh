#!/usr/bin/env bash
# r3:// (r3serve --socket over the r3 transport to r3serve --r3) next to nbdkit's nbd
# plugin proxying to nbdkit over the same emulated WAN link (tools/wan/r3wan.sh), at several
# round-trip times and rates: sequential read/write (nbdcopy) and 4K random read/write (fio,
# queue depth 32), with iperf3 as the link's ceiling. With -Dgrpc_bench (R3_GRPC_SERVER and
# R3_GRPC_PLUGIN set), a gRPC block service (tests/bench/grpc) joins as a third system, its
# client an nbdkit plugin, so all three sit behind the same kind of NBD front end. Prints a table and writes JSON. Not a
# pass/fail test: it fails only if a tool fails. Needs root (network namespaces). fio runs at
# queue depth 32, so 4K random I/O is bounded by 32 / RTT for both.
source "$(dirname "$0")/../integration/lib.sh"
require nbdkit nbdcopy nbdinfo fio iperf3 ip tc iptables python3
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
[ -x "${R3_NFQ_DELAY:-}" ] || skip "r3-nfq-delay was not built (libnetfilter-queue-dev missing)"
wan=${R3WAN:?}
out=${BENCH_OUT:-$PWD/transport_bench.json}
rtts=${BENCH_RTTS:-0 5 20 40}
rates=${BENCH_RATES:-100mbit unlimited}
runtime=${BENCH_SECONDS:-5}
# Sequential copies are short at low RTT and the first one after start pays for cold heaps
# and caches: each system's median of this many reads and writes, the systems taking turns.
repeat=${BENCH_REPEAT:-3}
# Requests both proxies keep in flight (r3serve --workers, nbdkit --threads): at 40 ms RTT
# this, not the link, bounds 4K random I/O (64 / 40 ms = 1600 IOPS).
threads=${BENCH_THREADS:-64}
link=b$((RANDOM % 10000))
export R3_NFQ_DELAY
systems=(r3 nbdkit)
if [ -x "${R3_GRPC_SERVER:-}" ] && [ -f "${R3_GRPC_PLUGIN:-}" ]; then
	systems+=(grpc)
else
	echo "gRPC baseline not built (meson -Dgrpc_bench=enabled needs libgrpc++-dev, protobuf-compiler-grpc, nbdkit-plugin-dev)"
fi

trap '"$wan" down "$link" || true; _cleanup' EXIT

results="$TEST_TMP/results.txt"
: >"$results"
record() { echo "$1 $2 $3 $4 $5" >>"$results"; } # rate rtt system metric value

# r3serve inside a namespace, through lib.sh's start_r3serve.
for side in a b; do
	printf '#!/bin/sh\nexec ip netns exec r3wan-%s-%s "%s" "$@"\n' "$link" "$side" "$R3SERVE" >"$TEST_TMP/r3serve-$side"
	chmod +x "$TEST_TMP/r3serve-$side"
done

mib_per_s() { python3 -c "print(f'{$1 / 1048576 / ($3 - $2):.2f}')"; }

time_copy() { # rate rtt system metric bytes nbdcopy-args...
	local rate=$1 rtt=$2 system=$3 metric=$4 bytes=$5
	shift 5
	local start end
	start=$(date +%s.%N)
	nbdcopy "$@"
	end=$(date +%s.%N)
	record "$rate" "$rtt" "$system" "$metric" "$(mib_per_s "$bytes" "$start" "$end")"
}

median_of() { # rate rtt system metric: replaces that metric's samples by their median
	python3 - "$results" "$@" <<'PY'
import statistics, sys
path, key = sys.argv[1], sys.argv[2:6]
lines = open(path).read().split("\n")
keep = [l for l in lines if l and l.split()[:4] != key]
samples = [float(l.split()[4]) for l in lines if l and l.split()[:4] == key]
if samples:
    keep.append(" ".join(key + [f"{statistics.median(samples):.2f}"]))
open(path, "w").write("\n".join(keep) + "\n")
PY
}

fio_iops() { # rate rtt system metric uri fio-args...
	local rate=$1 rtt=$2 system=$3 metric=$4 uri=$5
	shift 5
	fio --name=bench --ioengine=nbd --uri="$uri" --runtime="$runtime" --time_based --output-format=json \
		--output="$TEST_TMP/fio.json" "$@" >/dev/null
	record "$rate" "$rtt" "$system" "$metric" "$(python3 -c "
import json; j = json.load(open('$TEST_TMP/fio.json'))['jobs'][0]
print(f\"{j['read']['iops'] + j['write']['iops']:.0f}\")")"
}

for rate in $rates; do
	case $rate in
	unlimited) size_mb=256; rate_arg=() ;;
	*) size_mb=64; rate_arg=(--rate "$rate") ;;
	esac
	bytes=$((size_mb << 20))
	head -c "${size_mb}M" /dev/urandom >"$TEST_TMP/fill.bin"
	for rtt in $rtts; do
		echo "== rate $rate, rtt $rtt ms"
		"$wan" up "$link" --rtt "$rtt" "${rate_arg[@]}"
		# Both origins hold the same random data, so no hole can be skipped.
		cp "$TEST_TMP/fill.bin" "$TEST_TMP/origin-r3.img"
		cp "$TEST_TMP/fill.bin" "$TEST_TMP/origin-nbdkit.img"
		[[ " ${systems[*]} " == *" grpc "* ]] && cp "$TEST_TMP/fill.bin" "$TEST_TMP/origin-grpc.img"

		R3SERVE="$TEST_TMP/r3serve-b" start_r3serve origin --r3 --listen 10.231.0.2:7700 --log-level warn \
			"file:$TEST_TMP/origin-r3.img"
		# Processes outlive a deleted namespace: each setting's nbdkits are stopped at its end.
		ip netns exec "r3wan-$link-b" nbdkit --foreground --exit-with-parent -i 10.231.0.2 -p 10809 \
			file "$TEST_TMP/origin-nbdkit.img" >/dev/null 2>&1 &
		nbdkits=($!)
		track $!
		R3SERVE="$TEST_TMP/r3serve-a" start_r3serve local --socket "$TEST_TMP/r3.sock" --log-level warn \
			--workers "$threads" "r3://10.231.0.2:7700/?connections=2"
		for _ in $(seq 100); do
			ip netns exec "r3wan-$link-a" nbdinfo --size nbd://10.231.0.2:10809 >/dev/null 2>&1 && break
			sleep 0.1
		done
		ip netns exec "r3wan-$link-a" nbdkit --foreground --exit-with-parent --threads "$threads" \
			-U "$TEST_TMP/k.sock" nbd hostname=10.231.0.2 port=10809 >/dev/null 2>&1 &
		nbdkits+=($!)
		track $!
		for _ in $(seq 100); do nbdinfo --size "nbd+unix:///?socket=$TEST_TMP/k.sock" >/dev/null 2>&1 && break; sleep 0.1; done
		declare -A uri=([r3]="nbd+unix:///?socket=$TEST_TMP/r3.sock" [nbdkit]="nbd+unix:///?socket=$TEST_TMP/k.sock"
			[grpc]="nbd+unix:///?socket=$TEST_TMP/g.sock")
		if [[ " ${systems[*]} " == *" grpc "* ]]; then
			# Two connections, as r3:// has (connections=2).
			ip netns exec "r3wan-$link-b" "$R3_GRPC_SERVER" --listen 10.231.0.2:7800 "$TEST_TMP/origin-grpc.img" &
			nbdkits+=($!)
			track $!
			ip netns exec "r3wan-$link-a" nbdkit --foreground --exit-with-parent --threads "$threads" \
				-U "$TEST_TMP/g.sock" "$R3_GRPC_PLUGIN" host=10.231.0.2 port=7800 channels=2 >/dev/null 2>&1 &
			nbdkits+=($!)
			track $!
			for _ in $(seq 100); do nbdinfo --size "${uri[grpc]}" >/dev/null 2>&1 && break; sleep 0.1; done
		fi
		for pid in "${nbdkits[@]}"; do kill -0 "$pid" || fail "nbdkit or the gRPC server did not start"; done

		ip netns exec "r3wan-$link-b" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
		track $!
		sleep 0.3
		ip netns exec "r3wan-$link-a" iperf3 -c 10.231.0.2 -p 5201 -t 5 -O 2 -J >"$TEST_TMP/iperf.json"
		record "$rate" "$rtt" link tcp "$(python3 -c "
import json; print(f\"{json.load(open('$TEST_TMP/iperf.json'))['end']['sum_received']['bits_per_second'] / 8 / 2**20:.2f}\")")"

		for _ in $(seq "$repeat"); do
			for system in "${systems[@]}"; do
				time_copy "$rate" "$rtt" "$system" seqread "$bytes" --no-extents "${uri[$system]}" null:
				time_copy "$rate" "$rtt" "$system" seqwrite "$bytes" "$TEST_TMP/fill.bin" "${uri[$system]}"
			done
		done
		for system in "${systems[@]}"; do
			median_of "$rate" "$rtt" "$system" seqread
			median_of "$rate" "$rtt" "$system" seqwrite
			echo "   $system"
			fio_iops "$rate" "$rtt" "$system" randread4k "${uri[$system]}" --rw=randread --bs=4k --iodepth=32
			fio_iops "$rate" "$rtt" "$system" randwrite4k "${uri[$system]}" --rw=randwrite --bs=4k --iodepth=32
		done
		stop_r3serve local
		stop_r3serve origin
		kill "${nbdkits[@]}"
		wait "${nbdkits[@]}" 2>/dev/null || true
		rm -f "$TEST_TMP/k.sock" "$TEST_TMP/g.sock"
		"$wan" down "$link"
	done
done

python3 - "$results" "$out" <<'PY'
import datetime, json, os, platform, sys
rows = {}
for line in open(sys.argv[1]):
    rate, rtt, system, metric, value = line.split()
    rows.setdefault((rate, int(rtt)), {})[f"{system}.{metric}"] = float(value)
systems = sorted({k.split(".")[0] for v in rows.values() for k in v} - {"link"},
                 key=["r3", "nbdkit", "grpc"].index)
metrics = [("seqrd", "seqread"), ("seqwr", "seqwrite"), ("4k rd", "randread4k"), ("4k wr", "randwrite4k")]
cols = [("link MiB/s", "link.tcp")] + [(f"{s} {m}", f"{s}.{k}") for m, k in metrics for s in systems]
print(f"\nr3serve --workers and nbdkit --threads: {os.environ.get('BENCH_THREADS', 64)}; "
      f"sequential reads and writes: median of {os.environ.get('BENCH_REPEAT', 3)}")
print(f"{'rate':>10}{'rtt ms':>7}" + "".join(f"{c:>15}" for c, _ in cols) + f"{'r3 rd/link':>12}")
for (rate, rtt), v in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    cells = "".join(f"{v.get(k, float('nan')):>15.1f}" for _, k in cols)
    share = v["r3.seqread"] / v["link.tcp"] if v.get("link.tcp") else float("nan")
    print(f"{rate:>10}{rtt:>7}{cells}{share:>11.0%}")
print("\nr3 / peer (above 1: r3 ahead)")
peers = [s for s in systems if s != "r3"]
print(f"{'rate':>10}{'rtt ms':>7}" + "".join(f"{m + ' /' + p:>16}" for m, _ in metrics for p in peers))
for (rate, rtt), v in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    cells = "".join(f"{v.get('r3.' + k, float('nan')) / v[p + '.' + k] if v.get(p + '.' + k) else float('nan'):>15.2f}x"
                    for _, k in metrics for p in peers)
    print(f"{rate:>10}{rtt:>7}{cells}")
goal = rows.get(("100mbit", 40))
if goal:
    share = goal["r3.seqread"] / goal["link.tcp"]
    print(f"\ngoal (sequential read at 40 ms RTT, 100 Mbit >= 80% of the link): {share:.0%} "
          f"{'met' if share >= 0.8 else 'MISSED'}")
json.dump({"benchmark": "transport-wan", "date": datetime.datetime.utcnow().isoformat() + "Z",
           "host": {"cpus": os.cpu_count(), "kernel": platform.release()}, "systems": systems,
           "threads": int(os.environ.get("BENCH_THREADS", 64)),
           "seq_repeat": int(os.environ.get("BENCH_REPEAT", 3)),
           "units": {"seqread": "MiB/s", "seqwrite": "MiB/s", "randread4k": "IOPS", "randwrite4k": "IOPS",
                     "tcp": "MiB/s (iperf3)"},
           "results": [{"rate": r, "rtt_ms": t, **v} for (r, t), v in sorted(rows.items())]},
          open(sys.argv[2], "w"), indent=2)
print(f"JSON: {sys.argv[2]}")
PY
echo PASS
