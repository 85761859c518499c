#!/usr/bin/python3
"""Soak: hours of mixed load on r3serve exports, next to nbdkit under the same load; RSS,
open fds and threads of every server sampled at an interval, growth reported.

Servers: a remote (r3serve --r3 over a file), a managed export of it (r3serve --managed
with a cache directory, pushing back), a plain NBD export of a memory backend, and nbdkit's
memory plugin as the peer. Each gets clients (python3-libnbd) doing random reads, writes,
flushes, trims and zero writes, and reconnecting now and then, so that leaks per request
and per connection both show. The first sample after the warm-up is the baseline; the
growth is the last sample minus it, and a least-squares slope per hour. Not a pass/fail
test: it fails only if a server dies or a request fails.

  BENCH_MODE=quick|full (3 min | 60 min), BENCH_SECONDS overrides; BENCH_OUT=FILE.json
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import nbd
except ImportError:
    print("SKIP: python3-libnbd is not installed")
    sys.exit(77)

MODE = os.environ.get("BENCH_MODE", "quick")
SECONDS = int(os.environ.get("BENCH_SECONDS", 180 if MODE == "quick" else 3600))
INTERVAL = 10 if SECONDS <= 600 else 60
WARMUP = min(30, SECONDS // 6)
SIZE = 64 << 20
CLIENTS = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not get ready in {seconds} s")


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    return {"rss_kib": int(status["VmRSS"].split()[0]), "threads": int(status["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def slope_per_hour(times, values):
    n = len(times)
    if n < 2:
        return 0.0
    mt, mv = sum(times) / n, sum(values) / n
    den = sum((t - mt) ** 2 for t in times)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in zip(times, values)) / den * 3600


class Load(threading.Thread):
    """One client: mixed requests, a fresh connection every few hundred of them."""

    def __init__(self, name, connect, seed, stop):
        super().__init__(daemon=True)
        self.name_, self.connect, self.rng, self.stop = name, connect, random.Random(seed), stop
        self.requests, self.connections, self.error = 0, 0, None

    def run(self):
        try:
            while not self.stop.is_set():
                h = self.connect()
                self.connections += 1
                for _ in range(self.rng.randrange(100, 600)):
                    if self.stop.is_set():
                        break
                    self.one(h)
                h.shutdown()
        except Exception as e:  # a failed request is the finding: report it
            self.error = f"{type(e).__name__}: {e}"

    def one(self, h):
        length = self.rng.choice((4096, 65536, 1 << 20))
        offset = self.rng.randrange(SIZE // 4096 - length // 4096) * 4096
        op = self.rng.random()
        if op < 0.5:
            h.pread(length, offset)
        elif op < 0.85:
            h.pwrite(self.rng.randbytes(length), offset)
        elif op < 0.92:
            h.flush()
        elif op < 0.96 and h.can_trim():
            h.trim(length, offset)
        elif h.can_zero():
            h.zero(length, offset)
        self.requests += 1


def main():
    r3serve = os.environ.get("R3SERVE")
    if not r3serve:
        print("R3SERVE is not set", file=sys.stderr)
        return 2
    have_nbdkit = shutil.which("nbdkit") is not None
    work = tempfile.mkdtemp(prefix="r3soak.")
    procs, stop, rc = {}, threading.Event(), 1
    try:
        image = os.path.join(work, "remote.img")
        with open(image, "wb") as f:
            f.truncate(SIZE)
        rport = free_port()
        logs = {}

        def start(name, argv, ready):
            logs[name] = open(os.path.join(work, name + ".log"), "w")
            procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=logs[name])
            wait(ready, 30, name)

        def listening(port):
            def check():
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", port)) == 0
            return check

        start("remote", [r3serve, "--r3", "--listen", f"127.0.0.1:{rport}", "--name", "disk", f"file:{image}"],
              listening(rport))
        sockets = {n: os.path.join(work, n + ".sock") for n in ("managed", "direct", "nbdkit")}
        start("managed", [r3serve, "--managed", "--cache", os.path.join(work, "cache"), "--socket",
                          sockets["managed"], "--push-interval", "200ms", f"r3://127.0.0.1:{rport}/disk"],
              lambda: os.path.exists(sockets["managed"]))
        start("direct", [r3serve, "--socket", sockets["direct"], f"memory:{SIZE}"],
              lambda: os.path.exists(sockets["direct"]))
        if have_nbdkit:
            start("nbdkit", ["nbdkit", "--foreground", "--exit-with-parent", "-U", sockets["nbdkit"], "memory",
                             str(SIZE)], lambda: os.path.exists(sockets["nbdkit"]))
        targets = [n for n in ("managed", "direct", "nbdkit") if n in procs]

        def connector(path):
            def connect():
                h = nbd.NBD()
                h.connect_unix(path)
                return h
            return connect

        loads = [Load(n, connector(sockets[n]), i * 7 + k, stop) for i, n in enumerate(targets) for k in range(CLIENTS)]
        for load in loads:
            load.start()
        print(f"soak: {SECONDS} s ({MODE}), a sample every {INTERVAL} s after {WARMUP} s of warm-up; "
              f"servers: {', '.join(procs)}", flush=True)
        samples = {n: [] for n in procs}
        start_time = time.monotonic()
        time.sleep(WARMUP)
        next_sample = time.monotonic()
        while time.monotonic() - start_time < SECONDS:
            for name, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} died with {p.returncode}")
                s = sample(p.pid)
                s["t"] = round(time.monotonic() - start_time, 1)
                samples[name].append(s)
            failed = [f"{load.name_}: {load.error}" for load in loads if load.error]
            if failed:
                raise RuntimeError("a request failed: " + "; ".join(failed))
            line = "  ".join(f"{n} {samples[n][-1]['rss_kib'] // 1024} MiB/{samples[n][-1]['fds']} fds/"
                             f"{samples[n][-1]['threads']} thr" for n in procs)
            print(f"t={samples['remote'][-1]['t']:7.0f} s  {line}", flush=True)
            next_sample += INTERVAL
            time.sleep(max(0, next_sample - time.monotonic()))
        stop.set()
        for load in loads:
            load.join(30)
        requests = {n: sum(l.requests for l in loads if l.name_ == n) for n in targets}
        connections = {n: sum(l.connections for l in loads if l.name_ == n) for n in targets}
        rows = []
        print(f"\n{'server':<10} {'requests':>10} {'conns':>7} {'RSS MiB first→last':>20} {'RSS/h':>9} "
              f"{'fds first→last':>15} {'threads first→last':>19}")
        for name, ss in samples.items():
            t = [s["t"] for s in ss]
            row = {"server": name, "peer": name == "nbdkit", "requests": requests.get(name, 0),
                   "connections": connections.get(name, 0), "samples": len(ss)}
            for key in ("rss_kib", "fds", "threads"):
                row[f"{key}_first"], row[f"{key}_last"] = ss[0][key], ss[-1][key]
                row[f"{key}_growth"] = ss[-1][key] - ss[0][key]
                row[f"{key}_per_hour"] = round(slope_per_hour(t, [s[key] for s in ss]), 1)
            rows.append(row)
            print(f"{name:<10} {row['requests']:>10} {row['connections']:>7} "
                  f"{row['rss_kib_first'] / 1024:>9.1f} → {row['rss_kib_last'] / 1024:<8.1f} "
                  f"{row['rss_kib_per_hour'] / 1024:>+8.1f} {row['fds_first']:>7} → {row['fds_last']:<5} "
                  f"{row['threads_first']:>9} → {row['threads_last']:<5}")
        out = os.environ.get("BENCH_OUT", os.path.join(os.getcwd(), "soak_bench.json"))
        with open(out, "w") as f:
            json.dump({"bench": "soak", "mode": MODE, "seconds": SECONDS, "interval_s": INTERVAL,
                       "results": rows, "samples": samples}, f, indent=1)
        print(f"\nwrote {out}")
        rc = 0
        return rc
    except RuntimeError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        for name in logs:
            print(f"--- {name}.log (in {work})", file=sys.stderr)
        return 1
    finally:
        stop.set()
        # Last started first: the managed server pushes what is dirty at exit, so its remote
        # must still be up (stopped together, the push waits out the remote timeout).
        for p in reversed(list(procs.values())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        if rc == 0:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
