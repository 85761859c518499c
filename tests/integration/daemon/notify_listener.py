#!/usr/bin/python3
"""notify_listener.py SOCKET LOG: a stand-in for systemd's notification socket. Appends
every sd_notify datagram to LOG, one line per assignment, with a receive timestamp."""
import os
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
with open(log, "a", buffering=1) as out:
    out.write("LISTENING\n")
    while True:
        data = sock.recv(4096)
        for line in data.decode().splitlines():
            out.write(f"{time.monotonic():.3f} {line}\n")
