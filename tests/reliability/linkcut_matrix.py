#!/usr/bin/python3
"""Link-cut matrix: managed exports and migrations with their link cut for 1, 10 and 30 s.

The link is a TCP proxy (matrix_support.CutProxy) between the two sides; a cut is either a
blackhole (nothing forwarded, connections left open, as a dead route) or a reset (every
connection closed and new ones refused, as a peer that rebooted), chosen from a seed that
is printed, so a failing run can be replayed with --seed.

Managed (r3serve --managed in front of r3serve --r3 through the proxy):
  pull       the link is cut while the background pull runs; a reader reads chunks that
             are not pulled yet during the cut
  push       the link is cut while acknowledged writes are pushed; more writes and FLUSHes
             go on during the cut (the local cache takes them)
Migration (r3migrate seed and r3migrate pull through the proxy, a writer on the seeder):
  pre-copy   the link is cut during the pre-copy rounds, the finalize is asked after it heals
  finalize   the link is cut right after the finalize is asked
  post-copy  the link is cut after the handover; a reader reads the leecher's export during
             the cut (post-copy reads wait for the link)

Invariants, after every cut: no process died; every acknowledged write is served, bytes
nobody wrote are unchanged; a read made during the cut returned the right bytes or an
error, never other bytes; a migration completes with one owner whose copy equals the
seeder's final file, with every acknowledged record; the remote's fds do not grow. At the
end SIGTERM pushes everything: the remote file equals the model byte for byte. Prints the
points tried and the failures (the goal is 0); --json FILE writes them.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
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

from matrix_support import CutProxy, Model, Server, free_port

MANAGED_PHASES = ("pull", "push")
MIGRATION_PHASES = ("pre-copy", "finalize", "post-copy")
REMOTE_TIMEOUT_S = 20
RECORD = 4096


def schedule(rng, phases, durations, points):
    """Every phase at every duration first, then random picks."""
    product = [(p, d) for d in durations for p in phases]
    return [product[i] if i < len(product) else (rng.choice(phases), rng.choice(durations))
            for i in range(points)]


class Reader(threading.Thread):
    """Reads random ranges during a cut; keeps what each read returned or that it failed."""

    def __init__(self, connect, size, rng, reads, length):
        super().__init__(daemon=True)
        self.connect, self.size, self.reads, self.length = connect, size, reads, length
        self.offsets = [rng.randrange(size // length) * length for _ in range(reads)]
        self.results = []  # (offset, bytes or None for an error)
        self.longest = 0.0  # seconds: how long the longest read waited for the link

    def run(self):
        try:
            h = self.connect()
        except nbd.Error:
            return
        for offset in self.offsets:
            start = time.monotonic()
            try:
                self.results.append((offset, h.pread(self.length, offset)))
            except nbd.Error:
                self.results.append((offset, None))
            self.longest = max(self.longest, time.monotonic() - start)

    def wrong(self, image):
        """Reads that returned bytes other than `image` holds."""
        return [o for o, data in self.results if data is not None and data != image[o:o + len(data)]]

    def errors(self):
        return sum(1 for _, data in self.results if data is None)


class ManagedMatrix:
    def __init__(self, opts, rng, work):
        self.opts, self.rng, self.work = opts, rng, work
        self.size = opts.size_mib << 20
        self.image = os.path.join(work, "remote.img")
        with open(self.image, "wb") as f:
            f.write(rng.randbytes(self.size))
        with open(self.image, "rb") as f:
            self.model = Model(f.read())
        port = free_port()
        self.remote = Server(opts.r3serve, work, "remote",
                             ["--r3", "--listen", f"127.0.0.1:{port}", "--name", "disk", f"file:{self.image}"])
        self.proxy = CutProxy(port)
        self.socket = os.path.join(work, "managed.sock")
        self.cache_n = 0
        self.managed = None
        self.failures = []
        self.tried = {}
        self.errors_during_cuts = 0

    def managed_server(self):
        self.cache_n += 1
        cache = os.path.join(self.work, f"cache{self.cache_n}")
        # Rates are limited so that a cut finds the pull and the push running.
        return Server(self.opts.r3serve, self.work, "managed",
                      ["--managed", "--cache", cache, "--socket", self.socket,
                       "--push-rate", "4M", "--pull-rate", "4M", "--push-interval", "100ms",
                       "--remote-timeout", f"{REMOTE_TIMEOUT_S}s",
                       f"r3://127.0.0.1:{self.proxy.port}/disk"])

    def connect(self):
        h = nbd.NBD()
        h.connect_unix(self.socket)
        return h

    def acked_writes(self, h, n):
        for _ in range(n):
            length = self.rng.choice((4096, 65536, self.rng.randrange(1, 20000)))
            offset = self.rng.randrange(self.size - length)
            if all(offset + length <= o or o + len(d) <= offset for o, d in self.model.pending):
                data = self.rng.randbytes(length)
                self.model.wrote(offset, data)
                h.pwrite(data, offset)
        h.flush()
        self.model.flushed()

    def alive(self, label):
        for server in (self.remote, self.managed):
            if not server.alive():
                self.failures.append(f"{label}: {server.name} died:\n{server.tail()}")
                server.start()

    def check_served(self, label):
        h = self.connect()
        served = bytearray()
        step = 4 << 20
        for offset in range(0, self.size, step):
            for attempt in range(3):
                try:
                    served += h.pread(min(step, self.size - offset), offset)
                    break
                except nbd.Error:
                    # A pull that failed during the cut is retried by the next read.
                    if attempt == 2:
                        raise
                    time.sleep(1)
        h.shutdown()
        problems = self.model.check(served)
        if problems:
            self.failures.append(f"{label}: " + "; ".join(problems))
            self.model.acked[:] = served
            self.model.pending = []

    def point(self, i, phase, seconds, mode):
        label = f"managed point {i + 1} ({phase}, {seconds} s {mode})"
        reader = None
        if phase == "pull":
            # A fresh cache: the pull starts from nothing. SIGTERM pushed the old one.
            self.managed.stop()
            self.managed = self.managed_server()
            self.managed.start()
            time.sleep(self.rng.uniform(0, 0.5))
            self.proxy.cut(mode)
            reader = Reader(self.connect, self.size, self.rng, 4, 65536)
            reader.start()
            time.sleep(seconds)
            self.proxy.heal()
        else:
            h = self.connect()
            self.acked_writes(h, self.rng.randrange(10, 40))
            time.sleep(self.rng.uniform(0, 0.3))
            self.proxy.cut(mode)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                # The cache acknowledges these without the remote.
                self.acked_writes(h, self.rng.randrange(1, 8))
                time.sleep(0.2)
            self.proxy.heal()
            h.shutdown()
        if reader:
            reader.join(REMOTE_TIMEOUT_S * 4 + 30)
            if reader.is_alive():
                self.failures.append(f"{label}: a read made during the cut never returned")
            wrong = reader.wrong(self.model.acked)
            if wrong:
                self.failures.append(f"{label}: reads during the cut returned wrong bytes at {wrong[:3]}")
            self.errors_during_cuts += reader.errors()
            label += f", reads during the cut: {len(reader.results)}, {reader.errors()} failed, longest {reader.longest:.1f} s"
        self.alive(label)
        self.check_served(label)
        key = f"{phase}/{seconds}s"
        self.tried[key] = self.tried.get(key, 0) + 1
        print(f"{label}: ok so far, {self.model.acked_writes} acknowledged writes", flush=True)

    def run(self, plan):
        self.remote.start()
        self.managed = self.managed_server()
        self.managed.start()
        base_fds = self.remote.fds()
        max_fds = base_fds
        try:
            for i, (phase, seconds) in enumerate(plan):
                self.point(i, phase, seconds, self.rng.choice(("blackhole", "reset")))
                max_fds = max(max_fds, self.remote.fds())
            self.managed.stop()
            with open(self.image, "rb") as f:
                remote = f.read()
            if remote != bytes(self.model.acked):
                first = next(i for i in range(self.size) if remote[i] != self.model.acked[i])
                self.failures.append(f"after SIGTERM the remote differs from the acknowledged data at byte {first}")
            self.remote.stop()
        finally:
            for server in (self.managed, self.remote):
                if server and server.alive():
                    server.kill()
            self.proxy.close()
        if max_fds - base_fds > 4:
            self.failures.append(f"the remote's open fds grew by {max_fds - base_fds} over the cuts")
        return {"points": self.tried, "acknowledged_writes": self.model.acked_writes,
                "reads_failed_during_cuts": self.errors_during_cuts, "remote_fd_growth": max_fds - base_fds}


class Writer(threading.Thread):
    """4 KiB records through the seeder's export until the handover refuses them; keeps the
    last acknowledged record of each offset (acknowledged = a FLUSH after it returned)."""

    def __init__(self, socket_path, size, seed):
        super().__init__(daemon=True)
        self.socket_path, self.size, self.rng = socket_path, size, random.Random(seed)
        self.acked, self.stopped, self.refused = {}, threading.Event(), None
        self.unacked = {}  # the batch the handover cut short: it may have landed or not

    def run(self):
        h = nbd.NBD()
        h.connect_unix(self.socket_path)
        pending = {}
        try:
            while not self.stopped.is_set():
                for _ in range(8):
                    off = self.rng.randrange(self.size // RECORD) * RECORD
                    pending[off] = self.rng.randbytes(RECORD)
                    h.pwrite(pending[off], off)
                h.flush()
                self.acked.update(pending)
                pending = {}
                time.sleep(0.01)
        except nbd.Error as e:
            self.refused = str(e)
            self.unacked = pending


class Process:
    """A process whose stdout is captured in a file; r3migrate here."""

    def __init__(self, work, name, argv):
        self.work, self.name = work, name
        self.out = os.path.join(work, name + ".out")
        self.log = os.path.join(work, name + ".log")
        self.proc = subprocess.Popen(argv, stdout=open(self.out, "w"), stderr=open(self.log, "w"))

    def wait_output(self, pattern, seconds, path=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with open(path or self.out) as f:
                m = re.search(pattern, f.read(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def alive(self):
        return self.proc.poll() is None

    def tail(self, lines=15):
        with open(self.log) as f:
            return "".join(f.readlines()[-lines:])

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MigrationMatrix:
    def __init__(self, opts, rng, work):
        self.opts, self.rng, self.work = opts, rng, work
        self.size = opts.size_mib << 20
        self.failures = []
        self.tried = {}
        self.finalize_retries = 0
        self.downtimes_ms = []

    def point(self, i, phase, seconds, mode):
        label = f"migration point {i + 1} ({phase}, {seconds} s {mode})"
        d = os.path.join(self.work, f"m{i + 1}")
        os.mkdir(d)
        src = os.path.join(d, "src.img")
        with open(src, "wb") as f:
            f.write(self.rng.randbytes(self.size))
        seed_sock, lee_sock = os.path.join(d, "seed.sock"), os.path.join(d, "lee.sock")
        seeder = Process(d, "seed", [self.opts.r3migrate, "seed", f"file:{src}", "--listen", "127.0.0.1:0",
                                     "--export", f"unix:{seed_sock}",
                                     "--on-finalize", f"touch {os.path.join(d, 'suspended')}"])
        leecher, proxy, writer, reader = None, None, None, None
        try:
            m = seeder.wait_output(r"^r3://127\.0\.0\.1:(\d+)/(\S+)$", 30)
            if not m:
                raise RuntimeError(f"the seeder did not start:\n{seeder.tail()}")
            proxy = CutProxy(int(m.group(1)))
            writer = Writer(seed_sock, self.size, self.rng.randrange(1 << 32))
            writer.start()
            time.sleep(0.3)
            # The pull is rate-limited so that the post-copy phase has chunks left to pull.
            leecher = Process(d, "lee", [self.opts.r3migrate, "pull", f"r3://127.0.0.1:{proxy.port}/{m.group(2)}",
                                         "--export", f"unix:{lee_sock}", "--rate", "4M", "--finalize", "manual",
                                         "--post-copy-timeout", "90s", "--json"])
            if not leecher.wait_output(r"^export ", 30):
                raise RuntimeError(f"the leecher did not start:\n{leecher.tail()}")
            if phase == "pre-copy":
                time.sleep(self.rng.uniform(0.5, 1.5))
                proxy.cut(mode)
                time.sleep(seconds)
                proxy.heal()
                time.sleep(0.5)
                leecher.proc.send_signal(signal.SIGUSR1)
            elif phase == "finalize":
                time.sleep(self.rng.uniform(0.5, 1.5))
                leecher.proc.send_signal(signal.SIGUSR1)
                time.sleep(self.rng.uniform(0, 0.05))
                proxy.cut(mode)
                time.sleep(seconds)
                proxy.heal()
            else:
                time.sleep(0.5)
                leecher.proc.send_signal(signal.SIGUSR1)
                if not leecher.wait_output(r"post-copy|complete", 60, leecher.log):
                    raise RuntimeError(f"the leecher did not reach post-copy:\n{leecher.tail()}")
                proxy.cut(mode)
                reader = Reader(lambda: self.connect(lee_sock), self.size, self.rng, 8, 65536)
                reader.start()
                time.sleep(seconds)
                proxy.heal()
            # A finalize the cut made fail leaves the seeder the owner: ask again, as a user would.
            done = None
            for _ in range(4):
                done = leecher.wait_output(r'^\{.*"phase":"(complete|failed)".*$', 60)
                if done or not leecher.alive():
                    break
                self.finalize_retries += 1
                leecher.proc.send_signal(signal.SIGUSR1)
            self.check(label, seeder, leecher, writer, reader, src, lee_sock, done)
        except RuntimeError as e:
            self.failures.append(f"{label}: {e}")
        finally:
            if writer:
                writer.stopped.set()
                writer.join(30)
            for p in (leecher, seeder):
                if p:
                    p.stop()
            if proxy:
                proxy.close()
        key = f"{phase}/{seconds}s"
        self.tried[key] = self.tried.get(key, 0) + 1
        print(f"{label}: done, {len(self.failures)} failures so far", flush=True)
        if not self.failures and not self.opts.work:
            shutil.rmtree(d)

    def connect(self, path):
        h = nbd.NBD()
        h.connect_unix(path)
        return h

    def check(self, label, seeder, leecher, writer, reader, src, lee_sock, done):
        if not done:
            raise RuntimeError(f"the leecher did not complete:\n{leecher.tail()}")
        progress = json.loads(done.group(0))
        if progress["phase"] != "complete" or not progress["owner"]:
            raise RuntimeError(f"the leecher ended {progress['phase']}, owner {progress['owner']}: "
                               f"{progress.get('failure')}")
        self.downtimes_ms.append(progress["downtime_ns"] / 1e6)
        if not seeder.alive():
            raise RuntimeError(f"the seeder died:\n{seeder.tail()}")
        writer.stopped.set()
        writer.join(30)
        if writer.refused is None:
            self.failures.append(f"{label}: the seeder still took writes after the handover")
        with open(src, "rb") as f:
            final = f.read()
        h = self.connect(lee_sock)
        copy = b"".join(h.pread(1 << 20, o) for o in range(0, self.size, 1 << 20))
        h.shutdown()
        if copy != final:
            first = next(i for i in range(self.size) if copy[i] != final[i])
            self.failures.append(f"{label}: the leecher's copy differs from the seeder's final file at byte {first}")
        bad = [o for o, rec in writer.acked.items()
               if copy[o:o + RECORD] != rec and copy[o:o + RECORD] != writer.unacked.get(o)]
        if bad:
            self.failures.append(f"{label}: {len(bad)} of {len(writer.acked)} acknowledged records are missing")
        if reader:
            reader.join(120)
            if reader.is_alive():
                self.failures.append(f"{label}: a post-copy read made during the cut never returned")
            wrong = reader.wrong(final)
            if wrong:
                self.failures.append(f"{label}: post-copy reads during the cut returned wrong bytes at {wrong[:3]}")
            print(f"{label}: {len(reader.results)} post-copy reads during the cut, longest {reader.longest:.1f} s",
                  flush=True)
            if reader.errors():
                self.failures.append(f"{label}: {reader.errors()} post-copy reads failed although the cut "
                                     f"was shorter than --post-copy-timeout")

    def run(self, plan):
        for i, (phase, seconds) in enumerate(plan):
            self.point(i, phase, seconds, self.rng.choice(("blackhole", "reset")))
        return {"points": self.tried, "finalize_retries": self.finalize_retries,
                "downtime_ms": self.downtimes_ms}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--r3serve")
    p.add_argument("--r3migrate")
    p.add_argument("--target", choices=("managed", "migration", "all"), default="all")
    p.add_argument("--durations", default="1,10,30", help="cut lengths in seconds")
    p.add_argument("--points", type=int, help="points per target (default: every phase at every duration)")
    p.add_argument("--work", help="keep the files here (default: a temporary directory, removed if all passed)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--size-mib", type=int, default=16)
    p.add_argument("--json")
    opts = p.parse_args()
    durations = [int(d) for d in opts.durations.split(",")]
    if opts.seed is None:
        opts.seed = random.SystemRandom().randrange(1 << 32)
    rng = random.Random(opts.seed)
    targets = ("managed", "migration") if opts.target == "all" else (opts.target,)
    for t, tool in (("managed", opts.r3serve), ("migration", opts.r3migrate)):
        if t in targets and not tool:
            p.error(f"--target {t} needs --{'r3serve' if t == 'managed' else 'r3migrate'}")
    print(f"link-cut matrix: seed {opts.seed} (replay with --seed {opts.seed}), cuts of {durations} s, "
          f"{opts.size_mib} MiB, {', '.join(targets)}", flush=True)
    work = opts.work or tempfile.mkdtemp(prefix="r3cut.")
    os.makedirs(work, exist_ok=True)
    report, failures = {"seed": opts.seed, "durations_s": durations}, []
    for t in targets:
        phases = MANAGED_PHASES if t == "managed" else MIGRATION_PHASES
        plan = schedule(rng, phases, durations, opts.points or len(phases) * len(durations))
        os.makedirs(os.path.join(work, t), exist_ok=True)
        matrix = (ManagedMatrix if t == "managed" else MigrationMatrix)(opts, rng, os.path.join(work, t))
        report[t] = matrix.run(plan)
        failures += matrix.failures
        print(f"{t}: tried {sum(report[t]['points'].values())} cuts ({report[t]['points']}); "
              f"failures: {len(matrix.failures)}", flush=True)
    report["failures"] = failures
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(report, f, indent=1)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if failures:
        print(f"the processes' logs are in {work}", file=sys.stderr)
        return 1
    if not opts.work:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
