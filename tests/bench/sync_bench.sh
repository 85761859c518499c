#!/usr/bin/env bash
# Push sync against rsync: bringing N copies of a changed file up to date. A file of
# BENCH_SIZE random bytes has BENCH_PCTS % of its 1 MiB chunks changed at random (one run of
# 4-64 KiB each); then, per destination count N:
#   r3sync hub        `r3sync push --once` to an r3sync hub fanning out to N `r3sync serve
#                     --dir` destinations; time until every destination applied the round
#   r3sync direct     (N = 1) `r3sync push --once` straight to the destination
#   rsync sequential  `rsync --inplace --no-whole-file` to an rsync daemon, once per
#                     destination, one after the other
#   rsync parallel    the same, all destinations at once
# on loopback and, as root with r3-nfq-delay built, across an emulated 20 ms RTT
# (tools/wan/r3wan.sh: the source in one namespace; the hub, the destinations and the rsync
# daemon in the other). Per row: seconds to converged copies (r3sync hub: until the hub
# reports every destination up to date), bytes on the wire (as root: the IP bytes on every
# link, from the interface counters of namespaces holding only this bench; else the tools'
# counts) and what the tool counts itself (r3sync: its push's wire bytes, not the hub's
# fan-out; rsync: --stats sent + received, summed over the destinations). Every copy is
# checked with sha256 afterwards: a wrong copy fails the bench.
# Also r3sync's hashing throughput (a round with nothing changed) next to a memcpy. Prints a
# table and writes JSON; not a pass/fail test otherwise.
#
#   BENCH_MODE=quick|full (full)  quick: 256M, 1 and 4 destinations
#   BENCH_SIZE (1G), BENCH_DESTS ("1 4 16"), BENCH_PCTS ("1 10"), BENCH_RTTS ("0 20"), BENCH_OUT
source "$(dirname "$0")/../integration/lib.sh"
require python3 sha256sum rsync
helpers=$(dirname "$0")/../integration/sync/sync_helpers.py
mode=${BENCH_MODE:-full}
case $mode in
quick) d_size=256M d_dests="1 4" ;;
full) d_size=1G d_dests="1 4 16" ;;
*) fail "BENCH_MODE must be quick or full, not '$mode'" ;;
esac
size=${BENCH_SIZE:-$d_size}
dests=${BENCH_DESTS:-$d_dests}
pcts=${BENCH_PCTS:-1 10}
rtts=${BENCH_RTTS:-0 20}
out=${BENCH_OUT:-$PWD/sync_bench.json}
wan=${R3WAN:-$(dirname "$0")/../../tools/wan/r3wan.sh}
notes="$TEST_TMP/notes.txt"
: >"$notes"
note() {
	echo "note: $*"
	echo "$*" >>"$notes"
}
have_r3sync=1
[ -x "${R3SYNC:-}" ] || { have_r3sync=0; note "r3sync is not built: rsync rows only"; }

link=""
trap '[ -z "$link" ] || "$wan" down "$link" || true; _cleanup' EXIT

results="$TEST_TMP/results.jsonl"
: >"$results"
row() { # system rtt dests pct seconds wire_bytes tool_bytes
	printf '{"system":"%s","link":"%s","destinations":%s,"changed_pct":%s,"seconds":%s,"wire_bytes":%s,"tool_bytes":%s}\n' \
		"$1" "$([ "$2" = 0 ] && echo loopback || echo "rtt $2 ms")" "$3" "$4" "$5" "$6" "$7" >>"$results"
}
now() { date +%s.%N; }
# measured C0 TOOL: the counters' growth since C0, or the tool's own count without counters.
measured() {
	if [ ${#counted[@]} -gt 0 ]; then echo $(($(wire_count) - $1)); else echo "$2"; fi
}
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

src="$TEST_TMP/src.img"
head -c "$size" /dev/urandom >"$src"
bytes=$(stat -c %s "$src")

# verify FILE...: each FILE has the source's sha256 (two at a time: 2 cores).
verify() {
	local want bad
	want=$(sha256sum <"$src" | cut -d' ' -f1)
	bad=$(printf '%s\n' "$@" | xargs -P2 -n1 sha256sum | awk -v w="$want" '$1 != w { print $2 }')
	[ -z "$bad" ] || fail "a copy differs from the source: $bad"
}

# The rsync daemon: one module, a directory per destination.
rsync_conf="$TEST_TMP/rsyncd.conf"
{
	echo "use chroot = no"
	echo "log file = $TEST_TMP/rsyncd.log"
	[ "$(id -u)" -ne 0 ] || printf 'uid = 0\ngid = 0\n'
	printf '[bench]\npath = %s\nread only = no\n' "$TEST_TMP/rs"
} >"$rsync_conf"

# rsync_one ADDR PORT I STATS: one destination's rsync, its --stats in STATS. The file keeps
# its size and may keep its mtime's second: --ignore-times, or rsync's quick check skips it.
rsync_one() {
	"${cli[@]}" rsync --inplace --no-whole-file --ignore-times --stats "$src" "rsync://$1:$2/bench/d$3/src.img" >"$4"
}
rsync_bytes() { # STATS...: sent + received, summed
	cat "$@" | python3 -c '
import re, sys
t = sys.stdin.read().replace(",", "")
print(sum(int(x) for x in re.findall(r"Total bytes (?:sent|received): (\d+)", t)))'
}

# r3sync --json lines: the last one's field F.
last_field() { # FILE FIELD
	tail -n1 "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}

# wait_applied N FROM: until the hub reported, in a --json line after its line FROM, every one
# of its N destinations up to date (lag 0, no error); then prints the time.
wait_applied() {
	python3 - "$1" "$2" "$TEST_TMP/hub.out" <<'PY'
import json, sys, time
n, start, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
done, deadline = set(), time.monotonic() + 600
while len(done) < n and time.monotonic() < deadline:
    for line in open(path).readlines()[start:]:
        try:
            j = json.loads(line)
        except ValueError:
            continue
        d = j.get("destination", {}) if j.get("event") == "pushed" else {}
        if d.get("lag") == 0 and "error" not in d:
            done.add(d.get("to"))
    if len(done) < n:
        time.sleep(0.005)
if len(done) < n:
    sys.exit(f"only {sorted(done)} of {n} destinations came up to date")
print(f"{time.time():.6f}")
PY
}
hub_lines() { wc -l <"$TEST_TMP/hub.out"; }

# Bytes on the wire, as root: every system runs in network namespaces of its own, so the
# interface counters there hold its traffic and nothing else (IP packets, headers included):
# loopback inside one namespace, or the WAN link's veth plus the far side's loopback (the
# hub's fan-out). Without root: what the tools report (r3sync's push, rsync --stats).
counted=()
wire_count() {
	local ns dev total=0
	for ns_dev in "${counted[@]}"; do
		ns=${ns_dev%%:*}
		dev=${ns_dev#*:}
		total=$((total + $(ip -n "$ns" -s -j link show "$dev" | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]["stats64"]
# Loopback carries each packet once, received as sent; a veth end both ways.
print(s["rx"]["bytes"] if sys.argv[1] == "lo" else s["rx"]["bytes"] + s["tx"]["bytes"])' "$dev")))
	done
	echo $total
}

bench_link() { # RTT
	local rtt=$1 addr=127.0.0.1
	cli=()
	srv=()
	counted=()
	if [ "$rtt" = 0 ] && [ "$(id -u)" -eq 0 ]; then
		link=s$((RANDOM % 10000))
		ip netns add "r3wan-$link-a"
		ip -n "r3wan-$link-a" link set lo up
		cli=(ip netns exec "r3wan-$link-a")
		srv=("${cli[@]}")
		counted=("r3wan-$link-a:lo")
	elif [ "$rtt" != 0 ]; then
		if [ "$(id -u)" -ne 0 ] || [ ! -x "${R3_NFQ_DELAY:-}" ]; then
			note "RTT $rtt ms rows skipped: they need root and r3-nfq-delay (libnetfilter-queue-dev)"
			return
		fi
		link=s$((RANDOM % 10000))
		R3_NFQ_DELAY=$R3_NFQ_DELAY "$wan" up "$link" --rtt "$rtt" >/dev/null ||
			{ note "RTT $rtt ms rows skipped: r3wan.sh up failed"; link=""; return; }
		cli=(ip netns exec "r3wan-$link-a")
		srv=(ip netns exec "r3wan-$link-b")
		addr=10.231.0.2
		counted=("r3wan-$link-a:r3w${link}a" "r3wan-$link-b:lo")
	fi
	local n
	for n in $dests; do
		bench_dests "$rtt" "$addr" "$n"
	done
	if [ -n "$link" ]; then
		"$wan" down "$link"
		link=""
	fi
}

bench_dests() { # RTT ADDR N
	local rtt=$1 addr=$2 n=$3 i pct
	local need=$(((2 * n + 2) * bytes / 1024))
	local avail
	avail=$(df -k --output=avail "$TEST_TMP" | tail -n1)
	if [ "$avail" -lt $((need + 4 * 1024 * 1024)) ]; then
		note "$n destinations at rtt $rtt skipped: $((need / 1024 / 1024)) GiB of copies do not fit in $((avail / 1024 / 1024)) GiB"
		return
	fi
	local -a ports
	mapfile -t ports < <(python3 "$helpers" ports $((n + 3)))
	local pids=()

	# rsync: the daemon, and copies of the source as it is now.
	rm -rf "$TEST_TMP/rs"
	for i in $(seq "$n"); do
		mkdir -p "$TEST_TMP/rs/d$i"
		cp "$src" "$TEST_TMP/rs/d$i/src.img"
	done
	"${srv[@]}" rsync --daemon --no-detach --config="$rsync_conf" --address="$addr" --port="${ports[0]}" \
		2>>"$TEST_TMP/rsyncd.err" &
	pids+=($!)
	track $!

	# r3sync: N destinations behind a hub, and one more destination for the direct push.
	if [ $have_r3sync = 1 ]; then
		rm -rf "$TEST_TMP/r3"
		for i in $(seq 0 "$n"); do
			mkdir -p "$TEST_TMP/r3/d$i"
			: >"$TEST_TMP/serve$i.out"
			"${srv[@]}" "$R3SYNC" serve --listen "$addr:${ports[$((i + 2))]}" --dir "$TEST_TMP/r3/d$i" --json \
				>"$TEST_TMP/serve$i.out" 2>"$TEST_TMP/serve$i.log" &
			pids+=($!)
			track $!
		done
		local tos=()
		for i in $(seq "$n"); do tos+=(--to "r3://$addr:${ports[$((i + 2))]}"); done
		"${srv[@]}" "$R3SYNC" hub --listen "$addr:${ports[1]}" --dir "$TEST_TMP/r3/hub" "${tos[@]}" --json \
			>"$TEST_TMP/hub.out" 2>"$TEST_TMP/hub.log" &
		pids+=($!)
		track $!
		for i in $(seq 0 "$n") hub; do
			local f=$TEST_TMP/serve$i.out
			[ "$i" != hub ] || f=$TEST_TMP/hub.out
			for _ in $(seq 100); do grep -q '^listening' "$f" && break; sleep 0.1; done
		done
		# First contact: whole copies, not timed.
		"${cli[@]}" "$R3SYNC" push "$src" --to "r3://$addr:${ports[1]}" --once --json >"$TEST_TMP/push.out" ||
			fail "r3sync: the first push failed: $(tail -n5 "$TEST_TMP/hub.log")"
		wait_applied "$n" 0 >/dev/null || fail "r3sync: the hub did not fill every destination"
		if [ "$n" = 1 ]; then
			"${cli[@]}" "$R3SYNC" push "$src" --to "r3://$addr:${ports[2]}" --once --json >"$TEST_TMP/direct.out" ||
				fail "r3sync: the first direct push failed"
		fi
	fi
	for _ in $(seq 50); do
		"${cli[@]}" rsync "rsync://$addr:${ports[0]}/" >/dev/null 2>&1 && break
		sleep 0.1
	done

	for pct in $pcts; do
		local changed t0 t1 c0 copies=() r3copies=() wire
		changed=$(python3 "$helpers" mutate "$src" "$pct" "$RANDOM" 1M "$TEST_TMP/undo")
		echo "rtt $rtt ms, $n destinations, $pct % of chunks changed ($changed chunks)"
		for i in $(seq "$n"); do
			copies+=("$TEST_TMP/rs/d$i/src.img")
			r3copies+=("$TEST_TMP/r3/d$i/src.img")
		done

		if [ $have_r3sync = 1 ]; then
			local from
			from=$(hub_lines)
			c0=$(wire_count)
			t0=$(now)
			"${cli[@]}" "$R3SYNC" push "$src" --to "r3://$addr:${ports[1]}" --once --json >>"$TEST_TMP/push.out" ||
				fail "r3sync push through the hub failed"
			t1=$(wait_applied "$n" "$from") || fail "r3sync: the hub did not bring every destination up to date"
			wire=$(last_field "$TEST_TMP/push.out" wire_bytes)
			row "r3sync hub" "$rtt" "$n" "$pct" "$(elapsed "$t0" "$t1")" "$(measured "$c0" "$wire")" "$wire"
			verify "${r3copies[@]}"
			if [ "$n" = 1 ]; then
				c0=$(wire_count)
				t0=$(now)
				"${cli[@]}" "$R3SYNC" push "$src" --to "r3://$addr:${ports[2]}" --once --json >>"$TEST_TMP/direct.out" ||
					fail "r3sync direct push failed"
				t1=$(now)
				wire=$(last_field "$TEST_TMP/direct.out" wire_bytes)
				row "r3sync direct" "$rtt" "$n" "$pct" "$(elapsed "$t0" "$t1")" "$(measured "$c0" "$wire")" "$wire"
				verify "$TEST_TMP/r3/d0/src.img"
			fi
		fi

		# rsync, one destination after the other.
		c0=$(wire_count)
		t0=$(now)
		for i in $(seq "$n"); do rsync_one "$addr" "${ports[0]}" "$i" "$TEST_TMP/stats$i"; done
		t1=$(now)
		wire=$(rsync_bytes "$TEST_TMP"/stats*)
		row "rsync sequential" "$rtt" "$n" "$pct" "$(elapsed "$t0" "$t1")" "$(measured "$c0" "$wire")" "$wire"
		verify "${copies[@]}"
		rm -f "$TEST_TMP"/stats*

		# rsync to all at once, from the same starting copies.
		if [ "$n" -gt 1 ]; then
			python3 "$helpers" undo "$TEST_TMP/undo" "${copies[@]}"
			local rp=()
			c0=$(wire_count)
			t0=$(now)
			for i in $(seq "$n"); do
				rsync_one "$addr" "${ports[0]}" "$i" "$TEST_TMP/stats$i" &
				rp+=($!)
			done
			for i in "${rp[@]}"; do wait "$i" || fail "rsync failed"; done
			t1=$(now)
			wire=$(rsync_bytes "$TEST_TMP"/stats*)
			row "rsync parallel" "$rtt" "$n" "$pct" "$(elapsed "$t0" "$t1")" "$(measured "$c0" "$wire")" "$wire"
			verify "${copies[@]}"
			rm -f "$TEST_TMP"/stats*
		fi
	done

	# Hashing: a round with nothing changed is all hashing. Three rounds in one push: the
	# first reads with pread, the third from the mapping kept since the second.
	if [ $have_r3sync = 1 ] && [ "$rtt" = 0 ] && [ "$n" = "${dests%% *}" ]; then
		local threads
		for threads in 1 0; do
			local targ=()
			[ "$threads" = 0 ] || targ=(--threads "$threads")
			"${cli[@]}" "$R3SYNC" push "$src" --to "r3://$addr:${ports[1]}" --interval 10ms --rounds 3 --json \
				"${targ[@]}" >"$TEST_TMP/hash.out" || fail "r3sync: the hashing rounds failed"
			python3 - "$TEST_TMP/hash.out" "${threads/#0/default}" >>"$TEST_TMP/hash.jsonl" <<'PY'
import json, sys
rounds = [json.loads(l) for l in open(sys.argv[1])]
for r, read in ((rounds[0], "pread"), (rounds[-1], "kept mapping")):
    print(json.dumps({"threads": sys.argv[2], "read": read, "hash_threads": r["hash_threads"],
                      "hash_seconds": r["hash_seconds"], "hash_cpu_seconds": r["hash_cpu_seconds"]}))
PY
		done
	fi

	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	rm -rf "$TEST_TMP/rs" "$TEST_TMP/r3"
}

for rtt in $rtts; do
	bench_link "$rtt"
done

# memcpy for scale: one core copying 1 GiB in 64 MiB blocks; wall and per CPU-second (on a
# shared machine the wall figures of both say more about the neighbours than the code).
read -r memcpy_gbs memcpy_cpu_gbs < <(python3 - <<'PY'
import time
n = 1 << 30
a = bytearray(64 << 20)
b = bytearray(64 << 20)
mv = memoryview(b)
best = best_cpu = 0
for _ in range(3):
    t, c = time.perf_counter(), time.thread_time()
    for _ in range(n // len(a)):
        mv[:] = a
    best = max(best, n / (time.perf_counter() - t))
    best_cpu = max(best_cpu, n / max(time.thread_time() - c, 1e-9))
print(f"{best / 1e9:.2f} {best_cpu / 1e9:.2f}")
PY
)

python3 - "$results" "$TEST_TMP/hash.jsonl" "$notes" "$out" "$size" "$bytes" "$memcpy_gbs" "$memcpy_cpu_gbs" <<'PY'
import datetime, json, os, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
hashes = [json.loads(l) for l in open(sys.argv[2])] if os.path.exists(sys.argv[2]) else []
notes = [l.strip() for l in open(sys.argv[3]) if l.strip()]
size, memcpy, memcpy_cpu = int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8])
for r in rows:
    r["case"] = f"{r['link']}, {r['destinations']} dest"
    r["vs_rsync"] = None
for r in rows:
    peer = next((p for p in rows if p["system"] == "rsync sequential" and p["case"] == r["case"]
                 and p["changed_pct"] == r["changed_pct"]), None)
    if peer and r["system"].startswith("r3") and r["seconds"] > 0:
        r["vs_rsync"] = round(peer["seconds"] / r["seconds"], 2)
for h in hashes:
    h["hash_gbps"] = round(size / h["hash_seconds"] / 1e9, 2) if h["hash_seconds"] else None
    # Per CPU-second of one hashing thread, and what that many threads make of it.
    h["hash_cpu_gbps"] = round(size / h["hash_cpu_seconds"] / 1e9, 2) if h.get("hash_cpu_seconds") else None
    h["memcpy_gbps"] = memcpy
    h["memcpy_cpu_gbps"] = memcpy_cpu
def mib(b):
    return f"{b / 2**20:.1f}"
print(f"{'link':>10} {'dests':>5} {'changed':>7}  {'system':<17} {'seconds':>8} {'wire MiB':>9} {'tool MiB':>9} {'rsync ÷ ours':>12}")
for r in rows:
    print(f"{r['link']:>10} {r['destinations']:>5} {r['changed_pct']:>6}%  {r['system']:<17} {r['seconds']:>8.2f} "
          f"{mib(r['wire_bytes']):>9} {mib(r['tool_bytes']):>9} {r['vs_rsync'] if r['vs_rsync'] else '':>12}")
for h in hashes:
    print(f"hashing ({h['threads']} threads, {h.get('read', 'pread')}): {h['hash_gbps']} GB/s, "
          f"{h['hash_cpu_gbps']} GB/s per CPU-second; memcpy (one core): {memcpy} GB/s, {memcpy_cpu} per CPU-second")
for n in notes:
    print("note:", n)
json.dump({"benchmark": "sync", "date": datetime.datetime.utcnow().isoformat() + "Z", "host": platform.node(),
           "size": sys.argv[5], "chunk": "1M", "results": rows, "hashing": hashes, "memcpy_gbps": memcpy, "memcpy_cpu_gbps": memcpy_cpu,
           "notes": notes}, open(sys.argv[4], "w"), indent=1)
print("wrote", sys.argv[4])
PY
