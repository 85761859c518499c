#!/usr/bin/python3
"""Writes seed inputs for the NBD session fuzzer: well-formed conversations it can mutate."""
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
IHAVEOPT = 0x49484156454F5054


def opt(code, data=b""):
    return struct.pack(">QII", IHAVEOPT, code, len(data)) + data


def req(cmd, handle, offset, length, flags=0, payload=b""):
    return struct.pack(">IHHQQI", 0x25609513, flags, cmd, handle, offset, length) + payload


def meta(code, name, queries):
    body = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    for q in queries:
        body += struct.pack(">I", len(q)) + q
    return opt(code, body)


commands = (req(1, 1, 0, 512, 0, b"\xab" * 512) + req(0, 2, 0, 4096) + req(3, 3, 0, 0) +
            req(4, 4, 4096, 8192, 1) + req(6, 5, 0, 65536, 0x12) + req(5, 6, 0, 4096) +
            req(7, 7, 0, 1 << 20, 8) + req(0, 8, 65536, 70000) + req(2, 9, 0, 0))
seeds = {
    "list_abort": b"\0" + struct.pack(">I", 3) + opt(3) + opt(6, struct.pack(">IH", 0, 0)) + opt(2),
    "go_commands": b"\0" + struct.pack(">I", 3) + opt(8) + meta(10, b"", [b"base:allocation"]) +
    meta(9, b"", []) + opt(7, struct.pack(">I", 2) + b"ro" + struct.pack(">HHH", 2, 1, 2)) +
    opt(7, struct.pack(">IH", 0, 1) + struct.pack(">H", 3)) + commands,
    "export_name": b"\0" + struct.pack(">I", 1) + opt(1, b"") + commands,
    "kernel": b"\1" + commands,
    "kernel_slow": b"\3" + commands,
    "go_slow": b"\0" + struct.pack(">I", 3) + opt(7, struct.pack(">I", 4) + b"slow" + struct.pack(">H", 0)) + commands,
}
# Meta contexts of a MetaSource: list all and by namespace, set several, then block status
# (plain and REQ_ONE) on the inline export and on the worker pool.
meta_commands = req(7, 20, 0, 1 << 20) + req(7, 21, 4096, 65536, 8) + req(7, 22, 199999, 3) + commands
for export in (b"meta", b"slow"):
    seeds["meta_contexts_" + export.decode()] = (
        b"\0" + struct.pack(">I", 3) + opt(8) + meta(9, export, []) + meta(9, export, [b"x-r3map:"]) +
        meta(10, export, [b"x-r3map:dirty", b"base:allocation", b"x-r3map:present", b"x-r3map:"]) +
        opt(7, struct.pack(">I", len(export)) + export + struct.pack(">H", 0)) + meta_commands)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
