#!/usr/bin/python3
"""Helpers of the push sync test and benchmark (tests/integration/sync, tests/bench/sync_bench.sh).

  sync_helpers.py ports N                       N free TCP ports on 127.0.0.1, one a line
  sync_helpers.py mutate FILE PERCENT SEED [CHUNK [UNDO]]
                                                rewrites PERCENT % of FILE's chunks (CHUNK, 1M)
                                                at random: one random run of 4 KiB to 64 KiB
                                                in each, at a random offset; prints the count;
                                                with UNDO, saves the bytes it overwrote there
  sync_helpers.py undo UNDO FILE...             puts those bytes back into each FILE (copies
                                                of the file before the mutation)
  sync_helpers.py churn FILE STOPFILE SEED      random 4 KiB writes until STOPFILE exists;
                                                prints how many it made
  sync_helpers.py proxy LISTEN_PORT TARGET_PORT READYFILE
                                                a TCP proxy on 127.0.0.1 whose link can be cut:
                                                SIGUSR1 drops every connection and refuses new
                                                ones, SIGUSR2 restores the link; SIGHUP
                                                blackholes it instead (until SIGUSR2): bytes
                                                stop moving both ways and new connections are
                                                accepted but get nothing, as when packets are
                                                dropped on the way
"""
import os
import random
import selectors
import signal
import socket
import sys
import threading
import time


def size_arg(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


def ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
        s.close()


def mutate(path, percent, seed, chunk, undo=None):
    rng = random.Random(seed)
    size = os.path.getsize(path)
    chunks = (size + chunk - 1) // chunk
    n = max(1, round(chunks * percent / 100))
    saved = []
    fd = os.open(path, os.O_RDWR)
    try:
        for c in rng.sample(range(chunks), n):
            start = c * chunk
            span = min(chunk, size - start)
            length = min(span, rng.randrange(1, 17) * 4096)
            off = start + rng.randrange(0, span - length + 1)
            if undo:
                saved.append((off, os.pread(fd, length, off)))
            os.pwrite(fd, rng.randbytes(length), off)
    finally:
        os.close(fd)
    if undo:
        with open(undo, "wb") as f:
            for off, data in saved:
                f.write(off.to_bytes(8, "little") + len(data).to_bytes(8, "little") + data)
    print(n)


def undo(log, paths):
    records = []
    with open(log, "rb") as f:
        while head := f.read(16):
            off, length = int.from_bytes(head[:8], "little"), int.from_bytes(head[8:], "little")
            records.append((off, f.read(length)))
    for path in paths:
        fd = os.open(path, os.O_WRONLY)
        try:
            # Newest first: overlapping runs end as they were before the first.
            for off, data in reversed(records):
                os.pwrite(fd, data, off)
        finally:
            os.close(fd)


def churn(path, stop, seed):
    rng = random.Random(seed)
    size = os.path.getsize(path)
    fd = os.open(path, os.O_WRONLY)
    n = 0
    try:
        while not os.path.exists(stop):
            os.pwrite(fd, rng.randbytes(4096), rng.randrange(size // 4096) * 4096)
            n += 1
            # About 100 writes a second: a round sees some chunks change under it, not all.
            time.sleep(0.01)
    finally:
        os.close(fd)
    print(n)


class Proxy:
    def __init__(self, listen_port, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(64)
        self.cut = False
        self.lock = threading.Lock()
        # Set while the link moves bytes; cleared by a blackhole.
        self.open = threading.Event()
        self.open.set()
        self.pairs = []

    def drop_all(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    # RST rather than FIN: the link is gone, not closed politely.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def pump(self, src, dst):
        try:
            while True:
                # Blackholed: neither read nor forward, so the sender's socket buffers fill.
                self.open.wait()
                data = src.recv(1 << 16)
                if not data:
                    break
                self.open.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self):
        while True:
            c, _ = self.lsock.accept()
            if self.cut:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
                continue
            try:
                u = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, u))
            threading.Thread(target=self.pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c), daemon=True).start()


def proxy(listen_port, target_port, ready):
    p = Proxy(listen_port, target_port)

    def on_cut(*_):
        p.cut = True
        p.drop_all()
        print("proxy: link cut", file=sys.stderr, flush=True)

    def on_blackhole(*_):
        p.open.clear()
        print("proxy: link blackholed", file=sys.stderr, flush=True)

    def on_restore(*_):
        p.cut = False
        p.open.set()
        print("proxy: link restored", file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR1, on_cut)
    signal.signal(signal.SIGUSR2, on_restore)
    signal.signal(signal.SIGHUP, on_blackhole)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    open(ready, "w").write("ready\n")
    p.serve()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ports":
        ports(int(args[0]))
    elif cmd == "mutate":
        mutate(args[0], float(args[1]), int(args[2]), size_arg(args[3]) if len(args) > 3 else 1 << 20,
               args[4] if len(args) > 4 else None)
    elif cmd == "undo":
        undo(args[0], args[1:])
    elif cmd == "churn":
        churn(args[0], args[1], int(args[2]))
    elif cmd == "proxy":
        proxy(int(args[0]), int(args[1]), args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
