"""What the reliability matrices share: free ports, a restartable server process, the model
of acknowledged writes, and a TCP proxy that can cut the link (kill_matrix.py,
linkcut_matrix.py)."""

import os
import select
import signal
import socket
import subprocess
import threading
import time

SECTOR = 512


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One r3serve process; started again with the same arguments after a kill."""

    def __init__(self, r3serve, work, name, args):
        self.r3serve, self.work, self.name, self.args = r3serve, work, name, args
        self.proc = None

    def start(self, extra=()):
        pid_file = os.path.join(self.work, self.name + ".pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        log = open(os.path.join(self.work, self.name + ".log"), "a")
        self.proc = subprocess.Popen([self.r3serve, "--pid-file", pid_file, *self.args, *extra],
                                     stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(pid_file) and os.path.getsize(pid_file) > 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start:\n{self.tail()}")
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not get ready in 30 s:\n{self.tail()}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        if code != 0:
            raise RuntimeError(f"{self.name} exited with {code} after SIGTERM:\n{self.tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def tail(self, lines=15):
        with open(os.path.join(self.work, self.name + ".log")) as f:
            return "".join(f.readlines()[-lines:])


class Model:
    """What the export must serve: acknowledged bytes, plus the writes not yet flushed."""

    def __init__(self, data):
        self.acked = bytearray(data)
        self.pending = []  # (offset, bytes) since the last FLUSH that returned
        self.acked_writes = 0

    def wrote(self, offset, data):
        self.pending.append((offset, data))

    def flushed(self):
        for offset, data in self.pending:
            self.acked[offset:offset + len(data)] = data
        self.acked_writes += len(self.pending)
        self.pending = []

    def check(self, served):
        """Problems found in `served`; adopts what it shows of the pending writes."""
        allowed = {}  # sector -> the contents a pending write may have left there
        for offset, data in self.pending:
            first, last = offset // SECTOR, (offset + len(data) - 1) // SECTOR
            for s in range(first, last + 1):
                allowed.setdefault(s, []).append((offset, data))
        problems = []
        size = len(self.acked)
        for s in range(size // SECTOR):
            a, b = s * SECTOR, (s + 1) * SECTOR
            if served[a:b] == self.acked[a:b]:
                continue
            ok = False
            for offset, data in allowed.get(s, []):
                # The sector with this write's bytes over the acknowledged ones (any subset
                # of pending writes may land; one at a time is what a kill leaves in practice).
                want = bytearray(self.acked[a:b])
                lo, hi = max(a, offset), min(b, offset + len(data))
                want[lo - a:hi - a] = data[lo - offset:hi - offset]
                if served[a:b] == want:
                    ok = True
                    break
            if not ok:
                kind = "a sector with a write not acknowledged" if s in allowed else "acknowledged or unwritten data"
                problems.append(f"sector {s} (byte {a}): {kind} differs")
                if len(problems) >= 5:
                    break
        if not problems:
            self.acked[:] = served
            self.pending = []
        return problems


class CutProxy:
    """A TCP proxy in front of one port whose link can be cut and healed.

    "blackhole" stops forwarding in both directions and leaves the connections open, as a
    dead route does (TCP windows fill, nothing is reset); "reset" closes every connection
    and refuses new ones until the link heals, as a peer that rebooted does."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.flowing = threading.Event()
        self.flowing.set()
        self.mode = None
        self.conns = []  # (client, upstream) socket pairs
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, mode):
        with self.lock:
            self.mode = mode
            self.flowing.clear()
            if mode == "reset":
                for pair in self.conns:
                    for s in pair:
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                self.conns = []

    def heal(self):
        with self.lock:
            self.mode = None
            self.flowing.set()

    def close(self):
        self.closed = True
        self.heal()
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refuse = self.mode == "reset"
            if refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while not self.closed:
                # A blackhole leaves the bytes in the kernel's buffers: nothing is read.
                self.flowing.wait()
                ready, _, _ = select.select([src], [], [], 0.1)
                if not ready or not self.flowing.is_set():
                    continue
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
