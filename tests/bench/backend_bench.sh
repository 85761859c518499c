#!/usr/bin/env bash
# Every backend behind r3serve, direct (r3serve --socket URI: every read goes to the backend)
# and managed (r3serve --managed --cache DIR URI: a local cache pulled in the background),
# read over a UNIX socket on this machine (no emulated link: RTT 0, as in the thesis' table):
#   - first chunk: one 4 KiB pread of a never-read chunk, median of BENCH_SAMPLES, spaced
#     apart so no readahead sees a sequence (managed: with --background no, so the chunk is
#     surely remote: the demand pull, its cache write and the reply);
#   - sequential read of the whole region (nbdcopy --no-extents to null:, capped at
#     BENCH_SEQ_LIMIT s; managed: right after the start, the background pull running);
#   - managed only: the time from the start until the background pull has everything, nothing
#     reading (the stats file's local_bytes, polled by SIGUSR1).
# Backends: memory:, file:, dir:, redis:// (a private redis-server), s3:// (s3rver from npm),
# r3:// (r3serve --r3 of a memory backend on 127.0.0.1). Each is filled with random data
# first, so nothing is a hole. Peers, same run, same reads: nbdkit memory and nbdkit file
# for the memory and file rows, nbdkit's nbd plugin to an nbdkit memory over TCP loopback for
# the remote row. A backend whose server is missing (redis-server, s3rver) is left out with
# the reason; the rest still run. Prints a table and writes JSON; fails only if a tool fails.
#
# The memory backend lives inside its r3serve: the managed row's remote is a fresh, unfilled
# memory backend (filling it through the export would only make the data local). Its pulls
# read untouched pages: that row is not a filled backend's cost.
#
#   BENCH_MODE=quick|full (full)   quick: a 256 MiB region, 5 samples, 20 s cap
#   BENCH_SIZE                     the region (1G; quick 256M)
#   BENCH_S3_SIZE                  the S3 region (512M; quick 64M: s3rver is slow). At most
#                                  about 1000 chunks of 1 MiB: s3rver answers a listing that
#                                  needs a continuation with HTTP 500 (jamhall/s3rver#814)
#   BENCH_SAMPLES                  first-chunk samples (9; quick 5)
#   BENCH_SEQ_LIMIT                cap on one sequential read or pull, seconds (120; quick 20)
#   BENCH_BACKENDS                 which rows ("memory file dir redis s3 remote")
#   BENCH_DATA_DIR                 where the dir backend lives (/dev/shm)
#   BENCH_OUT                      the JSON file
source "$(dirname "$0")/../integration/transport/lib_transport.sh"
require nbdkit nbdcopy nbdinfo timeout
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"

mode=${BENCH_MODE:-full}
case $mode in
quick) d_size=256M d_s3_size=64M d_samples=5 d_seq_limit=20 ;;
full) d_size=1G d_s3_size=512M d_samples=9 d_seq_limit=120 ;;
*) fail "BENCH_MODE must be quick or full, not '$mode'" ;;
esac
size_arg=${BENCH_SIZE:-$d_size}
s3_size_arg=${BENCH_S3_SIZE:-$d_s3_size}
samples=${BENCH_SAMPLES:-$d_samples}
seq_limit=${BENCH_SEQ_LIMIT:-$d_seq_limit}
backends=${BENCH_BACKENDS:-memory file dir redis s3 remote}
out=${BENCH_OUT:-$PWD/backend_bench.json}
py=/usr/bin/python3
bytes_of() { $py -c "
s = '$1'.upper(); m = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
print(int(s[:-1]) * m[s[-1]] if s[-1] in m else int(s))"; }
size=$(bytes_of "$size_arg")
s3_size=$(bytes_of "$s3_size_arg")

# The fill data and the managed caches live in RAM. The file backend is a file on TEST_TMP's
# disk (in the page cache after the fill; on tmpfs every read's SEEK_HOLE, for sparse
# replies, scans the file's pages and reads ran at a fifth of the speed). The dir backend
# is in RAM too (BENCH_DATA_DIR): deleting its 4096 dirty chunk files on a shared disk took
# 12 s.
shm=$(mktemp -d /dev/shm/r3bb-XXXXXX)
data=$(mktemp -d "${BENCH_DATA_DIR:-$shm}/r3bb-data-XXXXXX")
trap '_cleanup; rm -rf "$data" "$shm"' EXIT

results="$TEST_TMP/results.txt"
: >"$results"
record() { echo "$1 $2 $3 $4" >>"$results"; } # backend system metric value
now() { date +%s.%N; }
calc() { $py -c "print($1)"; }
sock_uri() { unix_uri "$TEST_TMP/$1.sock"; }

cat >"$TEST_TMP/probe.py" <<'PY'
import json, os, signal, statistics, sys, time
import nbd

cmd = sys.argv[1]
if cmd == "latency":  # URI SIZE SAMPLES: 4 KiB preads of never-read chunks, then the same again
    uri, size, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    h = nbd.NBD()
    h.connect_uri(uri)
    # From the end backwards, 1 MiB-aligned (a chunk of every backend) and far apart.
    stride = max(1 << 20, (size // (n + 1)) >> 20 << 20)
    offs = [size - (i + 1) * stride for i in range(n)]
    cold, warm = [], []
    for lat in (cold, warm):
        for off in offs:
            t = time.perf_counter()
            h.pread(4096, off)
            lat.append(time.perf_counter() - t)
    print("fb_us", f"{statistics.median(cold) * 1e6:.1f}")
    print("fb_again_us", f"{statistics.median(warm) * 1e6:.1f}")
    h.shutdown()
elif cmd == "pulled":  # PID STATS SIZE T0 LIMIT: seconds from T0 until local_bytes reaches SIZE
    pid, path, size, t0, limit = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    local = 0
    while True:
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.05)
        try:
            local = json.load(open(path)).get("local_bytes", 0)
        except (OSError, ValueError):
            pass
        if local >= size or time.time() - t0 > limit:
            break
    print("pull_s", f"{time.time() - t0:.3f}")
    print("pull_fraction", f"{min(1, local / size):.4f}")
PY
probe() { # backend system probe-args...: records what the probe prints
	local backend=$1 system=$2 metric value
	shift 2
	$py "$TEST_TMP/probe.py" "$@" >"$TEST_TMP/probe.out" || fail "probe $1 of $backend $system failed"
	while read -r metric value; do record "$backend" "$system" "$metric" "$value"; done <"$TEST_TMP/probe.out"
}

seq_read() { # backend system uri bytes: nbdcopy of the whole export to null:, at most seq_limit s
	local backend=$1 system=$2 uri=$3 bytes=$4 start end status=0 frac=1
	start=$(now)
	timeout --signal=INT "$seq_limit" nbdcopy --no-extents --progress=3 "$uri" null: 3>"$TEST_TMP/progress" || status=$?
	end=$(now)
	if [ "$status" -eq 124 ]; then
		frac=$(tail -n1 "$TEST_TMP/progress" | $py -c "import sys; n, d = sys.stdin.read().split('/'); print(int(n) / int(d))")
	elif [ "$status" -ne 0 ]; then
		fail "nbdcopy from $backend $system failed ($status)"
	fi
	record "$backend" "$system" seqread "$(calc "$frac * $bytes / 1048576 / ($end - $start)")"
	record "$backend" "$system" seqread_fraction "$frac"
}

fill() { # uri: the fill data into it
	nbdcopy --no-extents "$shm/fill.bin" "$1" || fail "filling $1 failed"
}

# direct BACKEND URI BYTES [PREFILLED_NAME]: latency and sequential read through r3serve --socket.
direct() {
	local backend=$1 uri=$2 bytes=$3 name=${4:-}
	if [ -z "$name" ]; then
		name=d
		start_r3serve d --socket "$TEST_TMP/d.sock" --log-level warn "$uri"
	fi
	echo "   $backend direct"
	probe "$backend" direct latency "$(sock_uri "$name")" "$bytes" "$samples"
	seq_read "$backend" direct "$(sock_uri "$name")" "$bytes"
	stop_r3serve "$name"
}

start_managed() { # name uri r3serve-args...: a fresh cache
	local name=$1 uri=$2
	shift 2
	rm -rf "$shm/cache" "$TEST_TMP/$name.sock"
	mkdir -p "$shm/cache"
	start_r3serve "$name" --managed --cache "$shm/cache" --socket "$TEST_TMP/$name.sock" \
		--stats-file "$TEST_TMP/$name.stats" --log-level warn "$@" "$uri"
}

# managed BACKEND URI BYTES: first chunk (demand pull only), the pull alone, a read while pulling.
managed() {
	local backend=$1 uri=$2 bytes=$3 t0
	echo "   $backend managed"
	start_managed m "$uri" --background no
	probe "$backend" managed latency "$(sock_uri m)" "$bytes" "$samples"
	stop_r3serve m
	t0=$(date +%s.%N)
	start_managed m "$uri"
	probe "$backend" managed pulled "$m_pid" "$TEST_TMP/m.stats" "$bytes" "$t0" "$seq_limit"
	stop_r3serve m
	start_managed m "$uri"
	seq_read "$backend" managed "$(sock_uri m)" "$bytes"
	stop_r3serve m
}

# nbdkit_peer BACKEND LABEL BYTES NBDKIT-ARGS...: the same reads of an nbdkit on a socket
# (filled first unless it serves a file).
nbdkit_peer() {
	local backend=$1 label=$2 bytes=$3
	shift 3
	rm -f "$TEST_TMP/k.sock"
	nbdkit --foreground --exit-with-parent -U "$TEST_TMP/k.sock" "$@" >"$TEST_TMP/k.log" 2>&1 &
	local pid=$!
	track "$pid"
	for _ in $(seq 100); do nbdinfo --size "$(sock_uri k)" >/dev/null 2>&1 && break; sleep 0.1; done
	echo "   $backend peer: $label"
	[ "$1" = file ] || fill "$(sock_uri k)"
	probe "$backend" nbdkit latency "$(sock_uri k)" "$bytes" "$samples"
	seq_read "$backend" nbdkit "$(sock_uri k)" "$bytes"
	echo "$backend $label" >>"$TEST_TMP/peers.txt"
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

missing() { # backend why
	echo "   $1: left out: $2"
	echo "$1 $2" >>"$TEST_TMP/missing.txt"
}

run_start=$(now)
: >"$TEST_TMP/peers.txt"
: >"$TEST_TMP/missing.txt"
echo "mode $mode: region $size_arg (S3 $s3_size_arg), $samples first-chunk samples, reads capped at $seq_limit s"
head -c "$size" /dev/urandom >"$shm/fill.bin"
record all host load1 "$(cut -d' ' -f1 /proc/loadavg)"

for b in $backends; do
	echo "== $b ($(calc "round($(now) - $run_start)") s in)"
	case $b in
	memory)
		start_r3serve d --socket "$TEST_TMP/d.sock" --log-level warn "memory:$size"
		fill "$(sock_uri d)"
		direct memory "memory:$size" "$size" d
		managed memory "memory:$size" "$size"
		nbdkit_peer memory "nbdkit memory" "$size" memory "$size"
		;;
	file)
		cp "$shm/fill.bin" "$TEST_TMP/backend.img"
		direct file "file:$TEST_TMP/backend.img" "$size"
		managed file "file:$TEST_TMP/backend.img" "$size"
		nbdkit_peer file "nbdkit file" "$size" file "$TEST_TMP/backend.img"
		rm -f "$TEST_TMP/backend.img"
		;;
	dir)
		mkdir -p "$data/backend.d"
		start_r3serve fill --socket "$TEST_TMP/fill.sock" --log-level warn "dir:$data/backend.d?size=$size"
		fill "$(sock_uri fill)"
		stop_r3serve fill
		direct dir "dir:$data/backend.d" "$size"
		managed dir "dir:$data/backend.d" "$size"
		rm -rf "$data/backend.d"
		;;
	redis)
		if ! command -v redis-server >/dev/null; then
			missing redis "redis-server is not installed"
			continue
		fi
		start_redis redis ""
		start_r3serve fill --socket "$TEST_TMP/fill.sock" --log-level warn \
			"redis://127.0.0.1:$redis_port/bench?size=$size"
		fill "$(sock_uri fill)"
		stop_r3serve fill
		direct redis "redis://127.0.0.1:$redis_port/bench" "$size"
		managed redis "redis://127.0.0.1:$redis_port/bench" "$size"
		kill -TERM "$redis_pid"
		;;
	s3)
		if [ ! -x "$R3_NPM_CACHE/node_modules/.bin/s3rver" ] || ! command -v node >/dev/null; then
			missing s3 "s3rver is not installed in $R3_NPM_CACHE (run scripts/bootstrap.sh)"
			continue
		fi
		start_s3rver s3 bench
		export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
		s3_uri="s3://bench/disk?endpoint=http://127.0.0.1:$s3_port"
		start_r3serve fill --socket "$TEST_TMP/fill.sock" --log-level warn "$s3_uri&size=$s3_size"
		head -c "$s3_size" "$shm/fill.bin" >"$shm/fill_s3.bin"
		nbdcopy --no-extents "$shm/fill_s3.bin" "$(sock_uri fill)" || fail "filling S3 failed"
		rm -f "$shm/fill_s3.bin"
		stop_r3serve fill
		direct s3 "$s3_uri" "$s3_size"
		managed s3 "$s3_uri" "$s3_size"
		kill -TERM "$s3_pid"
		;;
	remote)
		start_r3serve origin --r3 --listen 127.0.0.1:0 --log-level warn "memory:$size"
		r3_uri="r3://$(tcp_address origin)/"
		start_r3serve fill --socket "$TEST_TMP/fill.sock" --log-level warn "$r3_uri"
		fill "$(sock_uri fill)"
		stop_r3serve fill
		direct remote "$r3_uri" "$size"
		managed remote "$r3_uri" "$size"
		stop_r3serve origin
		# The peer: nbdkit's nbd plugin to an nbdkit memory on TCP loopback (filled through it).
		kport=$(free_port)
		nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$kport" memory "$size" >"$TEST_TMP/korigin.log" 2>&1 &
		korigin=$!
		track "$korigin"
		wait_port "$kport" || fail "nbdkit memory did not start"
		nbdkit_peer remote "nbdkit nbd → nbdkit memory (TCP)" "$size" nbd hostname=127.0.0.1 port="$kport"
		kill -TERM "$korigin" 2>/dev/null || true
		wait "$korigin" 2>/dev/null || true
		;;
	*) fail "unknown backend '$b' in BENCH_BACKENDS" ;;
	esac
done

mkdir -p "$(dirname "$out")"
$py - "$results" "$TEST_TMP/peers.txt" "$TEST_TMP/missing.txt" "$out" "$(calc "$(now) - $run_start")" "$mode" \
	"$size" "$s3_size" "$samples" "$seq_limit" "$backends" <<'PY'
import datetime, json, math, os, platform, sys
results, peers_txt, missing_txt, out, elapsed, mode, size, s3_size, samples, seq_limit, backends = sys.argv[1:]
size, s3_size = int(size), int(s3_size)
vals = {}
for line in open(results):
    backend, system, metric, value = line.split()
    vals.setdefault(backend, {}).setdefault(system, {})[metric] = float(value)
peers = dict(line.rstrip("\n").split(" ", 1) for line in open(peers_txt) if line.strip())
missing = dict(line.rstrip("\n").split(" ", 1) for line in open(missing_txt) if line.strip())
nan = float("nan")
def get(b, s, m):
    return vals.get(b, {}).get(s, {}).get(m, nan)
def fmt(v, digits=1):
    return "-" if math.isnan(v) else f"{v:.{digits}f}"
def ratio(a, b):
    return nan if math.isnan(a) or math.isnan(b) or b == 0 else a / b
def seq(b, s):
    v = fmt(get(b, s, "seqread"))
    return v + ("*" if get(b, s, "seqread_fraction") < 1 else "")

order = [b for b in backends.split() if b in vals or b in missing]
head = ["backend", "first chunk µs: direct", "managed", "peer", "seq read MiB/s: direct", "managed", "peer",
        "direct ÷ peer", "managed ÷ peer", "managed pull s (MiB/s)", "peer"]
print(f"\nregion {size >> 20} MiB (S3 {s3_size >> 20} MiB), Unix socket, RTT 0; first chunk = median of {samples}; "
      f"load average {fmt(get('all', 'host', 'load1'), 2)} at the start; "
      "ratios: throughput ours ÷ peer, latency peer ÷ ours (above 1 = ours ahead)")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for b in order:
    if b in missing:
        print(f"| {b} | " + " | ".join(["-"] * (len(head) - 2)) + f" | left out: {missing[b]} |")
        continue
    bytes_ = s3_size if b == "s3" else size
    pull = get(b, "managed", "pull_s")
    pull_frac = get(b, "managed", "pull_fraction")
    pull_cell = f"{fmt(pull, 2)} ({fmt(pull_frac * bytes_ / 1048576 / pull, 0)})" + ("*" if pull_frac < 1 else "")
    lat = [get(b, s, "fb_us") for s in ("direct", "managed", "nbdkit")]
    row = [b, fmt(lat[0]), fmt(lat[1]), fmt(lat[2]), seq(b, "direct"), seq(b, "managed"), seq(b, "nbdkit"),
           f"{fmt(ratio(get(b, 'direct', 'seqread'), get(b, 'nbdkit', 'seqread')), 2)}x, "
           f"{fmt(ratio(lat[2], lat[0]), 2)}x",
           f"{fmt(ratio(get(b, 'managed', 'seqread'), get(b, 'nbdkit', 'seqread')), 2)}x, "
           f"{fmt(ratio(lat[2], lat[1]), 2)}x",
           pull_cell, peers.get(b, "none")]
    print("| " + " | ".join(row) + " |")
if any(get(b, s, "seqread_fraction") < 1 or get(b, s, "pull_fraction") < 1 for b in vals for s in vals[b]):
    print(f"\n* capped at {seq_limit} s: the rate over the part read (or pulled)")

def clean(d):
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
rows = []
for b in order:
    if b in missing:
        rows.append({"backend": b, "missing": missing[b]})
        continue
    bytes_ = s3_size if b == "s3" else size
    row = {"backend": b, "size": bytes_, "peer": peers.get(b)}
    for s, v in vals[b].items():
        row[s] = clean(v)
    if "managed" in row and row["managed"].get("pull_s"):
        row["managed"]["pull_mibps"] = row["managed"].get("pull_fraction", 1) * bytes_ / 1048576 / row["managed"]["pull_s"]
    rows.append(row)
json.dump({"benchmark": "backend", "date": datetime.datetime.utcnow().isoformat() + "Z",
           "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "load1": get("all", "host", "load1")},
           "config": {"mode": mode, "size": size, "s3_size": s3_size, "samples": int(samples),
                      "seq_limit_s": float(seq_limit), "elapsed_s": float(elapsed)},
           "units": {"fb_us": "µs (median, 4 KiB pread of a never-read chunk)", "fb_again_us": "µs (the same again)",
                     "seqread": "MiB/s (nbdcopy to null:)", "pull_s": "s from the start until all local",
                     "pull_mibps": "MiB/s"},
           "results": rows}, open(out, "w"), indent=2, ensure_ascii=False)
print(f"\nJSON: {out} ({float(elapsed):.0f} s)")
PY
echo PASS
