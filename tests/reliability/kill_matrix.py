#!/usr/bin/python3
"""Kill matrix for managed exports: SIGKILL at many points, then check the invariants.

A remote (r3serve --r3, a file) and a managed export of it (r3serve --managed with a cache
directory) on this machine; a client writes through the managed export with libnbd and
keeps a model of what is acknowledged (every write before a FLUSH that returned). At each
kill point one process is killed with SIGKILL; the phases are chosen from a seed that is
printed, so a failing run can be replayed with --seed:

  pull       the managed export while its background pull runs
  push       the managed export while it pushes acknowledged writes (rate-limited)
  flush      the managed export between a FLUSH and its reply
  write      the managed export at a random moment of a stream of writes and flushes
  remote     the remote while the managed export pushes; restarted on the same port

After each kill (the victim restarted on the same cache or port):
  - every acknowledged write is served, and bytes nobody wrote are unchanged; a write
    not acknowledged may be there or not, sector by sector;
  - the cache lock was released: the restart succeeds, and a second managed export on the
    same cache is refused while one runs (never two writers);
  - the remote's open fds do not grow from kill to kill.
At the end SIGTERM pushes everything: the remote file equals the model byte for byte.
Prints the kill points tried per phase and the writes lost (the goal is 0); --json FILE
writes them.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

try:
    import nbd
except ImportError:
    print("SKIP: python3-libnbd is not installed")
    sys.exit(77)

from matrix_support import Model, Server, free_port

PHASES = ("pull", "push", "flush", "write", "remote")


class Matrix:
    def __init__(self, opts):
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.work = opts.work
        self.size = opts.size_mib << 20
        self.image = os.path.join(self.work, "remote.img")
        with open(self.image, "wb") as f:
            f.write(self.rng.randbytes(self.size))
        with open(self.image, "rb") as f:
            self.model = Model(f.read())
        port = free_port()
        self.remote = Server(opts.r3serve, self.work, "remote",
                             ["--r3", "--listen", f"127.0.0.1:{port}", "--name", "disk", f"file:{self.image}"])
        self.socket = os.path.join(self.work, "managed.sock")
        self.cache = os.path.join(self.work, "cache")
        # Pushes and pulls are rate-limited so that a kill finds them running.
        self.managed = Server(opts.r3serve, self.work, "managed",
                              ["--managed", "--cache", self.cache, "--socket", self.socket,
                               "--push-rate", "4M", "--pull-rate", "8M", "--push-interval", "100ms",
                               "--remote-timeout", "20s", f"r3://127.0.0.1:{port}/disk"])
        self.tried = {p: 0 for p in PHASES}
        self.lost = 0
        self.failures = []

    def connect(self):
        h = nbd.NBD()
        h.connect_unix(self.socket)
        return h

    def random_write(self):
        """A write at a random place, some of them unaligned, none overlapping a pending one."""
        for _ in range(100):
            length = self.rng.choice((4096, 65536, 65536 * 3, self.rng.randrange(1, 20000)))
            offset = self.rng.randrange(self.size - length)
            if self.rng.random() < 0.6:
                offset -= offset % 4096
            if all(offset + length <= o or o + len(d) <= offset for o, d in self.model.pending):
                return offset, self.rng.randbytes(length)
        return None

    def write_batch(self, h, writes):
        for _ in range(writes):
            w = self.random_write()
            if w is None:
                break
            self.model.wrote(*w)
            h.pwrite(w[1], w[0])

    def acked_batch(self, h, writes):
        self.write_batch(h, writes)
        h.flush()
        self.model.flushed()

    def kill_point(self, phase):
        m, r = self.managed, self.remote
        if phase == "pull":
            m.kill()
            m.start()
            time.sleep(self.rng.uniform(0, 0.3))
            m.kill()
        elif phase == "push":
            h = self.connect()
            self.acked_batch(h, self.rng.randrange(5, 40))
            time.sleep(self.rng.uniform(0, 0.5))
            m.kill()
        elif phase == "flush":
            h = self.connect()
            self.acked_batch(h, 3)
            self.write_batch(h, self.rng.randrange(1, 20))
            h.aio_flush()
            m.kill()
        elif phase == "write":
            h = self.connect()
            timer = threading.Timer(self.rng.uniform(0.05, 0.6), m.kill)
            timer.start()
            try:
                while m.proc.poll() is None:
                    self.acked_batch(h, self.rng.randrange(1, 8))
            except nbd.Error:
                pass  # the kill: what was not flushed stays pending
            timer.join()
            m.proc.wait()
        elif phase == "remote":
            h = self.connect()
            self.acked_batch(h, self.rng.randrange(5, 40))
            time.sleep(self.rng.uniform(0, 0.4))
            r.kill()
            # Local writes go on while the remote is away; they are acknowledged by the cache.
            self.acked_batch(h, self.rng.randrange(1, 10))
            time.sleep(self.rng.uniform(0, 1.0))
            r.start()
            h.shutdown()
            return
        m.proc.wait()
        m.start()

    def check_served(self, label):
        h = self.connect()
        served = bytearray()
        step = 4 << 20
        for offset in range(0, self.size, step):
            served += h.pread(min(step, self.size - offset), offset)
        h.shutdown()
        pending = len(self.model.pending)
        problems = self.model.check(served)
        if problems:
            self.lost += 1
            self.failures.append(f"{label}: " + "; ".join(problems))
            # Go on from what is served, so one loss is not counted again at every later point.
            self.model.acked[:] = served
            self.model.pending = []
        return pending

    def second_writer_refused(self):
        second = Server(self.opts.r3serve, self.work, "second", self.managed.args[:])
        second.args[second.args.index("--socket") + 1] = os.path.join(self.work, "second.sock")
        try:
            second.start()
        except RuntimeError as e:
            return "cache" in str(e) or "lock" in str(e) or "in use" in str(e)
        second.kill()
        return False

    def run(self):
        self.remote.start()
        self.managed.start()
        if not self.second_writer_refused():
            self.failures.append("a second managed export on the same cache was not refused")
        base_fds = self.remote.fds()
        max_fds = base_fds
        for i in range(self.opts.kills):
            phase = PHASES[i % len(PHASES)] if i < len(PHASES) else self.rng.choice(PHASES)
            self.tried[phase] += 1
            self.kill_point(phase)
            pending = self.check_served(f"kill point {i + 1} ({phase})")
            if phase != "remote":
                max_fds = max(max_fds, self.remote.fds())
            print(f"kill point {i + 1}: {phase}; {pending} writes were not acknowledged; "
                  f"{self.model.acked_writes} acknowledged so far", flush=True)
        self.managed.stop()
        self.remote.stop()
        with open(self.image, "rb") as f:
            remote = f.read()
        if remote != bytes(self.model.acked):
            first = next(i for i in range(self.size) if remote[i] != self.model.acked[i])
            self.failures.append(f"after SIGTERM the remote differs from the acknowledged data at byte {first}")
            self.lost += 1
        # The remote was restarted by the remote phases, which resets its fd count: the
        # growth is measured between kills of the managed side only.
        return max_fds - base_fds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--r3serve", required=True)
    p.add_argument("--work", help="keep the files here (default: a temporary directory, removed if all passed)")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--size-mib", type=int, default=16)
    p.add_argument("--json")
    opts = p.parse_args()
    if opts.seed is None:
        opts.seed = random.SystemRandom().randrange(1 << 32)
    print(f"kill matrix: seed {opts.seed} (replay with --seed {opts.seed}), {opts.kills} kill points, "
          f"{opts.size_mib} MiB", flush=True)
    temporary = opts.work is None
    if temporary:
        opts.work = tempfile.mkdtemp(prefix="r3kill.")
    matrix = Matrix(opts)
    try:
        fd_growth = matrix.run()
    finally:
        for server in (matrix.managed, matrix.remote):
            if server.proc and server.proc.poll() is None:
                server.kill()
    tried = ", ".join(f"{n} {p}" for p, n in matrix.tried.items())
    print(f"tried {sum(matrix.tried.values())} kill points ({tried}); {matrix.model.acked_writes} "
          f"acknowledged writes; points with lost or changed data: {matrix.lost}; remote fd growth {fd_growth}")
    if fd_growth > 4:
        matrix.failures.append(f"the remote's open fds grew by {fd_growth} over the kills")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"seed": opts.seed, "kill_points": matrix.tried, "acknowledged_writes": matrix.model.acked_writes,
                       "points_with_loss": matrix.lost, "remote_fd_growth": fd_growth,
                       "failures": matrix.failures}, f, indent=1)
    for failure in matrix.failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if matrix.failures:
        print(f"the processes' logs are in {opts.work}", file=sys.stderr)
        return 1
    if temporary:
        shutil.rmtree(opts.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
