#!/usr/bin/env bash
# r3serve next to nbdkit (memory plugin), same machine, same run, same fio/nbdcopy jobs,
# over TCP, a UNIX socket and TLS (both with --tls=require and the same certificate),
# plus iperf3 on loopback as the transport ceiling. Prints a table and writes JSON.
# Not a pass/fail test: it fails only if a tool fails.
source "$(dirname "$0")/../integration/lib.sh"
require fio nbdkit nbdcopy iperf3 python3
out=${BENCH_OUT:-$PWD/nbd_bench.json}
runtime=${BENCH_SECONDS:-10}
size=512M

results="$TEST_TMP/results.txt"
: >"$results"
record() { echo "$1 $2 $3" >>"$results"; } # job server value

echo "filling both servers with $size of random data"
head -c $size /dev/urandom >"$TEST_TMP/fill"

start_r3serve r3 --listen 127.0.0.1:0 --log-level warn memory:$size
r3_tcp=$(tcp_address r3)
# nbdkit has no "any free port" option: ask the kernel for one.
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nbdkit --exit-with-parent --foreground -i 127.0.0.1 -p "$kport" memory $size >/dev/null 2>&1 &
track $!
for _ in $(seq 50); do nbdinfo --size "nbd://127.0.0.1:$kport" >/dev/null 2>&1 && break; sleep 0.1; done
start_r3serve r3u --socket "$TEST_TMP/r3.sock" --log-level warn memory:$size
nbdkit --exit-with-parent --foreground -U "$TEST_TMP/k.sock" memory $size >/dev/null 2>&1 &
track $!
for _ in $(seq 50); do [ -S "$TEST_TMP/k.sock" ] && break; sleep 0.1; done

# NBD over TLS: one certificate for both servers; the clients find the CA where libnbd
# looks by default ($HOME/.pki/libnbd), since fio cannot pass tls-certificates.
"$(dirname "$0")/../support/make_test_certs.sh" "$TEST_TMP/certs"
mkdir -p "$TEST_TMP/kcerts" "$TEST_TMP/home/.pki/libnbd"
cp "$TEST_TMP/certs/server.pem" "$TEST_TMP/kcerts/server-cert.pem"
cp "$TEST_TMP/certs/server.key" "$TEST_TMP/kcerts/server-key.pem"
cp "$TEST_TMP/certs/ca.pem" "$TEST_TMP/kcerts/ca-cert.pem"
cp "$TEST_TMP/certs/ca.pem" "$TEST_TMP/home/.pki/libnbd/ca-cert.pem"
start_r3serve r3t --listen 127.0.0.1:0 --log-level warn --tls-cert "$TEST_TMP/certs/server.pem" \
	--tls-key "$TEST_TMP/certs/server.key" memory:$size
r3_tls=$(tcp_address r3t)
ktport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nbdkit --exit-with-parent --foreground -i 127.0.0.1 -p "$ktport" --tls=require \
	--tls-certificates="$TEST_TMP/kcerts" memory $size >/dev/null 2>&1 &
track $!
export HOME="$TEST_TMP/home"
for _ in $(seq 50); do nbdinfo --size "nbds://127.0.0.1:$ktport" >/dev/null 2>&1 && break; sleep 0.1; done

declare -A uri=(
	[r3serve]="nbd://$r3_tcp" [nbdkit]="nbd://127.0.0.1:$kport"
	[r3serve-unix]="nbd+unix:///?socket=$TEST_TMP/r3.sock" [nbdkit-unix]="nbd+unix:///?socket=$TEST_TMP/k.sock"
	[r3serve-tls]="nbds://$r3_tls" [nbdkit-tls]="nbds://127.0.0.1:$ktport"
)
servers=(r3serve nbdkit r3serve-unix nbdkit-unix r3serve-tls nbdkit-tls)
for s in "${servers[@]}"; do
	nbdcopy "$TEST_TMP/fill" "${uri[$s]}"
done

fio_job() { # name server fio-args...
	local name=$1 server=$2
	shift 2
	fio --name="$name" --ioengine=nbd --uri="${uri[$server]}" --size=$size --runtime="$runtime" --time_based \
		--group_reporting --output-format=json --output="$TEST_TMP/fio.json" "$@"
	python3 - "$TEST_TMP/fio.json" "$name" "$server" >>"$results" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
name, server = sys.argv[2], sys.argv[3]
for d in ("read", "write"):
    if job[d]["io_bytes"]:
        print(f"{name}-{d}-iops {server} {job[d]['iops']:.0f}")
        print(f"{name}-{d}-MiBps {server} {job[d]['bw_bytes'] / 2**20:.1f}")
PY
}

for s in "${servers[@]}"; do
	echo "fio on $s"
	fio_job 4k-randrw "$s" --rw=randrw --bs=4k --iodepth=32 --numjobs=2
	fio_job 1m-seqread "$s" --rw=read --bs=1M --iodepth=8 --numjobs=1
	fio_job 1m-seqwrite "$s" --rw=write --bs=1M --iodepth=8 --numjobs=1
	start=$(date +%s.%N)
	nbdcopy "${uri[$s]}" null:
	end=$(date +%s.%N)
	record nbdcopy-null-MiBps "$s" "$(python3 -c "print(f'{512 / ($end - $start):.1f}')")"
done

echo "iperf3 loopback"
iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
track $!
sleep 0.5
iperf3 -c 127.0.0.1 -p 5299 -t "$runtime" -J >"$TEST_TMP/iperf.json"
record tcp-loopback-MiBps iperf3 "$(python3 -c "import json,sys; print(f\"{json.load(open('$TEST_TMP/iperf.json'))['end']['sum_received']['bits_per_second'] / 8 / 2**20:.1f}\")")"

python3 - "$results" "$out" <<'PY'
import json, sys, platform, os, datetime
rows = {}
for line in open(sys.argv[1]):
    job, server, value = line.split()
    rows.setdefault(job, {})[server] = float(value)
servers = ["r3serve", "nbdkit", "r3serve-unix", "nbdkit-unix", "r3serve-tls", "nbdkit-tls"]
ratio = lambda vals, a, b: vals[a] / vals[b] if vals.get(a) and vals.get(b) else float("nan")
print(f"\n{'job':26}" + "".join(f"{s:>14}" for s in servers) +
      f"{'r3/nbdkit tcp':>15}{'r3/nbdkit unix':>16}{'r3/nbdkit tls':>15}")
for job, vals in rows.items():
    if job == "tcp-loopback-MiBps":
        continue
    cells = "".join(f"{vals.get(s, float('nan')):>14.1f}" for s in servers)
    print(f"{job:26}{cells}{ratio(vals, 'r3serve', 'nbdkit'):>14.2f}x{ratio(vals, 'r3serve-unix', 'nbdkit-unix'):>15.2f}x"
          f"{ratio(vals, 'r3serve-tls', 'nbdkit-tls'):>14.2f}x")
tcp = rows["tcp-loopback-MiBps"]["iperf3"]
seq = rows["1m-seqread-read-MiBps"]["r3serve"]
print(f"\niperf3 TCP loopback: {tcp:.0f} MiB/s; r3serve 1M sequential read over TCP: {seq:.0f} MiB/s = {seq / tcp:.2f} of loopback")
json.dump({"benchmark": "nbd", "date": datetime.datetime.utcnow().isoformat() + "Z",
           "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
           "results": rows}, open(sys.argv[2], "w"), indent=2)
print(f"JSON: {sys.argv[2]}")
PY
