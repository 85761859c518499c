#!/usr/bin/env python3
"""A minimal NBD client for the TLS tests, for what libnbd cannot be told to do: pin the
TLS version, skip STARTTLS. Prints one line saying what happened.

usage: nbd_tls_probe.py HOST PORT [--max-tls 1.2] [--min-tls 1.3] [--ca FILE]
                        [--server-name NAME] [--no-starttls]
exit: 0 the export's size was read, 2 the server refused an option, 3 TLS failed.
"""
import argparse
import socket
import ssl
import struct
import sys

IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
OPT_GO, OPT_STARTTLS = 7, 5
REP_ACK, REP_INFO = 1, 3
ERRORS = {0x80000001: "UNSUP", 0x80000002: "POLICY", 0x80000003: "INVALID", 0x80000005: "TLS_REQD",
          0x80000006: "UNKNOWN"}
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        part = s.recv(n - len(buf))
        if not part:
            raise EOFError("the server closed the connection")
        buf += part
    return buf


def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def reply(s):
    magic, opt, rtype, length = struct.unpack(">QIII", recv_exact(s, 20))
    assert magic == REPLY_MAGIC, hex(magic)
    return rtype, recv_exact(s, length)


def refused(what, rtype, data):
    print(f"{what} refused: {ERRORS.get(rtype, hex(rtype))}: {data.decode(errors='replace')}")
    sys.exit(2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--max-tls")
    p.add_argument("--min-tls")
    p.add_argument("--ca")
    p.add_argument("--server-name")
    p.add_argument("--no-starttls", action="store_true")
    a = p.parse_args()

    s = socket.create_connection((a.host, a.port), timeout=10)
    magic, ihaveopt, flags = struct.unpack(">QQH", recv_exact(s, 18))
    assert ihaveopt == IHAVEOPT and flags & 1, "not a fixed newstyle server"
    s.sendall(struct.pack(">I", 1 | 2))  # FIXED_NEWSTYLE | NO_ZEROES
    if not a.no_starttls:
        option(s, OPT_STARTTLS)
        rtype, data = reply(s)
        if rtype != REP_ACK:
            refused("STARTTLS", rtype, data)
        ctx = ssl.create_default_context(cafile=a.ca)
        if a.max_tls:
            ctx.maximum_version = VERSIONS[a.max_tls]
        if a.min_tls:
            ctx.minimum_version = VERSIONS[a.min_tls]
        try:
            s = ctx.wrap_socket(s, server_hostname=a.server_name or a.host)
        except (ssl.SSLError, ssl.CertificateError, OSError) as e:
            print(f"TLS failed: {e}")
            sys.exit(3)
        print(f"TLS on: {s.version()}")
    option(s, OPT_GO, struct.pack(">IH", 0, 0))  # the default export, no info requests
    size = None
    while True:
        rtype, data = reply(s)
        if rtype == REP_ACK:
            break
        if rtype == REP_INFO and struct.unpack(">H", data[:2])[0] == 0:
            size = struct.unpack(">Q", data[2:10])[0]
        elif rtype != REP_INFO:
            refused("GO", rtype, data)
    print(f"export size {size}")
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 0, 0, 0))  # NBD_CMD_DISC
    s.close()


if __name__ == "__main__":
    main()
