#!/usr/bin/python3
"""r3serve under libnbd (nbdsh's Python binding) and a raw socket client: option haggling,
bad requests of every kind, each answered with the right error while the connection and
the server keep working."""

import errno
import os
import socket
import struct
import sys

import nbd

sock_path, ro_path = sys.argv[1], sys.argv[2]
MIB = 1 << 20
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    checks += 1


def expect_error(fn, code, what):
    try:
        fn()
    except nbd.Error as e:
        # The binding reports errno as a name ("EINVAL") or a number, by version.
        check(e.errno in (code, errno.errorcode.get(code)), f"{what}: errno {e.errno} ({e.string}), wanted {code}")
        return
    check(False, f"{what}: no error")


def connect(path, name="", strict=True, structured=True):
    h = nbd.NBD()
    h.set_export_name(name)
    h.set_request_structured_replies(structured)
    h.add_meta_context("base:allocation")
    if not strict:
        h.set_strict_mode(0)
    h.connect_unix(path)
    return h


# ---------------------------------------------------------------- option haggling (libnbd)
h = nbd.NBD()
h.set_opt_mode(True)
h.add_meta_context("base:allocation")
h.connect_unix(sock_path)
names = []
h.opt_list(lambda name, desc: names.append(name) or 0)
check(names == ["", "two"], f"opt_list gave {names}")
h.set_export_name("two")
h.opt_info()
check(h.get_size() == 32 * MIB, "opt_info size of 'two'")
h.set_export_name("nosuch")
expect_error(h.opt_info, errno.ENOENT, "opt_info of an unknown export")
h.set_export_name("")
h.opt_go()
check(h.get_size() == 64 * MIB, "opt_go size")
check(h.can_meta_context("base:allocation"), "base:allocation negotiated")
h.pwrite(b"x" * 4096, 0)
check(h.pread(4096, 0) == b"x" * 4096, "read after go")
h.shutdown()

h = nbd.NBD()
h.set_opt_mode(True)
h.connect_unix(sock_path)
h.opt_abort()
check(h.aio_is_closed(), "connection closed after opt_abort")

# ---------------------------------------------------------------- transmission (libnbd)
h = connect(sock_path, strict=False)
size = h.get_size()
h.pwrite(b"\xaa" * 8192, size - 8192)
check(h.pread(8192, size - 8192) == b"\xaa" * 8192, "last bytes of the export")
expect_error(lambda: h.pread(4096, size - 100), errno.EINVAL, "read past the end")
expect_error(lambda: h.pread(1, size), errno.EINVAL, "read at the end")
expect_error(lambda: h.pwrite(b"y" * 4096, size - 100), errno.ENOSPC, "write past the end")
check(h.pread(100, size - 100) == b"\xaa" * 100, "write past the end stored nothing")
expect_error(lambda: h.trim(4096, size), errno.ENOSPC, "trim past the end")
expect_error(lambda: h.zero(4096, size), errno.ENOSPC, "zero past the end")
expect_error(lambda: h.pread(33 * MIB, 0), errno.EINVAL, "read over the payload cap")
expect_error(lambda: h.pwrite(b"z" * (33 * MIB), 0), errno.EINVAL, "write over the payload cap")
check(len(h.pread(4096, 0)) == 4096, "connection alive after oversize requests")
h.pwrite(b"q" * 4096, 0)
check(h.pread(4096, 0) == b"q" * 4096, "connection usable after errors")
# Zero-length I/O is a valid no-op.
check(h.pread(0, 0) == b"", "zero-length read")
# Flush, FUA, cache, trim, zero, fast zero and block status all work.
h.pwrite(b"f" * 65536, 1 * MIB, nbd.CMD_FLAG_FUA)
h.flush()
h.cache(MIB, 0)
h.trim(65536, 1 * MIB)
check(h.pread(65536, MIB) == bytes(65536), "trimmed range reads as zeros")
h.zero(65536, 2 * MIB, nbd.CMD_FLAG_FAST_ZERO)
h.zero(65536, 3 * MIB, nbd.CMD_FLAG_NO_HOLE)
check(h.pread(65536, 3 * MIB) == bytes(65536), "zeroed range reads as zeros")
extents = []
h.block_status(8 * MIB, 0, lambda meta, off, e, err: extents.extend(e) or 0)
check(len(extents) >= 2 and sum(extents[0::2]) <= 8 * MIB, f"block status extents {extents[:8]}")
# Many requests in flight at once, completed in any order.
cookies = [h.aio_pwrite(bytes([i]) * 4096, 20 * MIB + i * 4096) for i in range(64)]
pending = set(cookies)
while pending:
    h.poll(-1)
    pending = {c for c in pending if not h.aio_command_completed(c)}
for i in range(64):
    check(h.pread(4096, 20 * MIB + i * 4096) == bytes([i]) * 4096, f"aio write {i}")
h.shutdown()

# Without structured replies, errors still come back as simple replies.
h = connect(sock_path, strict=False, structured=False)
expect_error(lambda: h.pread(4096, h.get_size()), errno.EINVAL, "simple-reply read past the end")
check(h.pread(4096, 0) == b"q" * 4096, "simple replies work")
h.shutdown()

# ---------------------------------------------------------------- read-only export
h = connect(ro_path, strict=False)
check(h.is_read_only(), "read-only flag")
expect_error(lambda: h.pwrite(b"w" * 512, 0), errno.EPERM, "write to a read-only export")
expect_error(lambda: h.trim(512, 0), errno.EPERM, "trim of a read-only export")
expect_error(lambda: h.zero(512, 0), errno.EPERM, "zero of a read-only export")
check(h.pread(512, 0) == bytes(512), "read-only export reads")
h.shutdown()

# ---------------------------------------------------------------- raw socket client
NBDMAGIC, IHAVEOPT, REPLYMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


def raw_handshake(flags=3):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    magic, opt, hflags = struct.unpack(">QQH", recv_exact(s, 18))
    check(magic == NBDMAGIC and opt == IHAVEOPT and hflags == 3, "server greeting")
    s.sendall(struct.pack(">I", flags))
    return s


def send_opt(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def read_opt_reply(s):
    head = recv_exact(s, 20)
    if head is None:
        return None
    magic, opt, rtype, length = struct.unpack(">QIII", head)
    check(magic == REPLYMAGIC, "option reply magic")
    return opt, rtype, recv_exact(s, length) if length else b""


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


s = raw_handshake()
send_opt(s, 99, b"hello")
opt, rtype, _ = read_opt_reply(s)
check(opt == 99 and rtype == 0x80000001, "unknown option gets NBD_REP_ERR_UNSUP")
send_opt(s, 5)  # STARTTLS: we run with --tls=off, so it is refused by policy
check(read_opt_reply(s)[1] == 0x80000002, "STARTTLS refused")
send_opt(s, 3, b"junk")  # LIST with data is invalid
check(read_opt_reply(s)[1] == 0x80000003, "LIST with data gets NBD_REP_ERR_INVALID")
send_opt(s, 7, struct.pack(">I", 100) + b"ab")  # GO whose name length lies
check(read_opt_reply(s)[1] == 0x80000003, "GO with a bad name length gets ERR_INVALID")
send_opt(s, 10, struct.pack(">II", 0, 0))  # SET_META_CONTEXT before structured replies
check(read_opt_reply(s)[1] == 0x80000003, "meta context without structured replies refused")
send_opt(s, 3)
replies = []
while True:
    r = read_opt_reply(s)
    replies.append(r[1])
    if r[1] != 2:
        break
check(replies == [2, 2, 1], f"LIST after errors: {replies}")
# An absurd option length closes this client only.
s.sendall(struct.pack(">QII", IHAVEOPT, 3, 1 << 30))
check(closed(s), "absurd option length closes the connection")

s = raw_handshake(flags=0x80)
check(closed(s), "unknown client flags close the connection")

s = raw_handshake()
s.sendall(struct.pack(">QII", 0x1234, 3, 0))
check(closed(s), "bad option magic closes the connection")

# Transmission over a raw socket: commands libnbd will not send.
s = raw_handshake()
send_opt(s, 1, b"")  # EXPORT_NAME: size, flags, no zeroes (we set NO_ZEROES)
size, tflags = struct.unpack(">QH", recv_exact(s, 10))
check(size == 64 * MIB and tflags & 1, "EXPORT_NAME reply")


def request(flags, cmd, handle, offset, length, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, cmd, handle, offset, length) + payload)


def simple_reply():
    magic, err, handle = struct.unpack(">IIQ", recv_exact(s, 16))
    check(magic == 0x67446698, "simple reply magic")
    return err, handle


request(0, 99, 1, 0, 0)
check(simple_reply() == (errno.EINVAL, 1), "unknown command gets EINVAL")
request(0x100, 0, 2, 0, 512)
check(simple_reply() == (errno.EINVAL, 2), "unknown command flag gets EINVAL")
request(0, 1, 3, 0, 33 * MIB, b"\0" * (33 * MIB))
check(simple_reply() == (errno.EINVAL, 3), "oversize write gets EINVAL and its payload is skipped")
request(0, 7, 4, 0, 4096)
check(simple_reply() == (errno.EINVAL, 4), "block status without a meta context gets EINVAL")
request(0, 0, 5, 0, 512)
err, handle = simple_reply()
check(err == 0 and handle == 5 and len(recv_exact(s, 512)) == 512, "read works after bad requests")
s.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, 0, 6, 0, 0))
check(closed(s), "bad request magic closes the connection")

# The server survived all of it.
h = connect(sock_path)
check(h.pread(4096, 0) == b"q" * 4096, "server still serving")
h.shutdown()
print(f"PASS ({checks} checks)")
