#!/usr/bin/python3
"""Checksummed, fsync'ed records in a file: what an app writing through a filesystem on a
migrating device has acknowledged, and whether all of it arrived.

  record_log.py write PATH FIRST [COUNT]   append records FIRST.. (COUNT of them, or until
                                           SIGTERM), each fsync'ed, then its number printed
                                           on stdout: printed means acknowledged
  record_log.py verify PATH ACKED          every number in the file ACKED is in PATH, whole
"""
import hashlib
import os
import signal
import sys

RECORD = 4096  # one page each, so every record dirties the device


def record(n):
    body = f"record {n:08d} ".encode() + bytes((n * 7 + i) & 0xFF for i in range(64)) * 60
    digest = hashlib.sha256(body).hexdigest().encode()
    line = body + b" " + digest
    return line + b"." * (RECORD - len(line) - 1) + b"\n"


def write(path, first, count):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    n = first
    while not stop and (count is None or n < first + count):
        os.write(fd, record(n))
        os.fsync(fd)
        print(n, flush=True)
        n += 1
    os.close(fd)


def verify(path, acked_path):
    with open(path, "rb") as f:
        data = f.read()
    found = {}
    for i in range(0, len(data) - RECORD + 1, RECORD):
        chunk = data[i:i + RECORD]
        n = int(chunk[7:15])
        if chunk != record(n):
            sys.exit(f"record {n} at offset {i} is damaged")
        found[n] = i
    with open(acked_path) as f:
        acked = [int(line) for line in f if line.strip()]
    missing = [n for n in acked if n not in found]
    if missing:
        sys.exit(f"{len(missing)} of {len(acked)} acknowledged records are missing, first {missing[0]}")
    print(f"all {len(acked)} acknowledged records present ({len(found)} in the file)")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
    elif sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
