#!/usr/bin/python3
"""libnbd (nbdsh's Python binding) against nbd_meta_server: listing meta contexts by
name and namespace, selecting several, and BLOCK_STATUS of each, with and without REQ_ONE.
Arguments: socket, export size, and the present and dirty ranges as "OFF+LEN,..." in bytes."""

import sys

import nbd

sock, size = sys.argv[1], int(sys.argv[2])
PRESENT, DIRTY, BASE = "x-r3map:present", "x-r3map:dirty", "base:allocation"
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    checks += 1


def ranges(arg):
    out = []
    for item in filter(None, arg.split(",")):
        off, length = item.split("+")
        out.append((int(off), int(length)))
    return out


marked = {PRESENT: ranges(sys.argv[3]), DIRTY: ranges(sys.argv[4])}


def expected(name, off, length):
    """What the server must answer for [off, off+length): [len, flags, len, flags, ...]."""
    if name == BASE:
        return [length, 3]  # nothing written: all hole and zero
    out, pos, end = [], off, off + length
    for o, l in marked[name]:
        if o + l <= pos:
            continue
        if o >= end:
            break
        if o > pos:
            out += [o - pos, 0]
        stop = min(o + l, end)
        out += [stop - max(pos, o), 1]
        pos = stop
    if pos < end:
        out += [end - pos, 0]
    return out


def listed(queries):
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_unix(sock)
    for q in queries:
        h.add_meta_context(q)
    names = []
    h.opt_list_meta_context(lambda name: names.append(name) or 0)
    h.opt_abort()
    return names


def connect(*contexts):
    h = nbd.NBD()
    for c in contexts:
        h.add_meta_context(c)
    h.connect_unix(sock)
    return h


def block_status(h, length, offset, flags=0):
    got = {}

    def cb(ctx, off, entries, err):
        check(off == offset, f"{ctx}: reply for offset {off}, asked {offset}")
        check(ctx not in got, f"{ctx}: two chunks in one reply")
        got[ctx] = list(entries)
        return 0

    h.block_status(length, offset, cb, flags)
    return got


# ---------------------------------------------------------------- listing
check(listed([]) == [BASE, PRESENT, DIRTY], f"list all: {listed([])}")
check(listed(["x-r3map:"]) == [PRESENT, DIRTY], f"list x-r3map: {listed(['x-r3map:'])}")
check(listed(["base:"]) == [BASE], "list base:")
check(listed([DIRTY]) == [DIRTY], "list by name")
check(listed(["x-r3map:nosuch", "nosuch:", "x-r3map"]) == [], "unknown queries are ignored")

# ---------------------------------------------------------------- selecting
h = connect(DIRTY, "x-r3map:", BASE, "x-r3map:nosuch", PRESENT)
check(h.can_meta_context(PRESENT) and h.can_meta_context(DIRTY) and h.can_meta_context(BASE), "all three chosen")
check(not h.can_meta_context("x-r3map:"), "a wildcard selects nothing")
check(h.get_nr_meta_contexts() == 5, "libnbd kept the requests")

# ---------------------------------------------------------------- block status
for offset, length in [(0, size), (0, 65536), (65536, 1 << 20), (1048576 + 100, 5000), (1200000, 1),
                       (size - 8192, 8192), (12345, 1 << 22)]:
    got = block_status(h, length, offset)
    check(sorted(got) == sorted([BASE, PRESENT, DIRTY]), f"contexts in the reply: {sorted(got)}")
    for name in (PRESENT, DIRTY, BASE):
        check(got[name] == expected(name, offset, length),
              f"{name} at {offset}+{length}: {got[name][:10]}, wanted {expected(name, offset, length)[:10]}")
    one = block_status(h, length, offset, nbd.CMD_FLAG_REQ_ONE)
    for name in (PRESENT, DIRTY, BASE):
        check(one[name] == expected(name, offset, length)[:2], f"{name} REQ_ONE at {offset}+{length}: {one[name]}")
        check(one[name][0] <= length, f"{name} REQ_ONE longer than asked")

# Walking the export with REQ_ONE, as a client making progress one extent at a time would.
for name in (PRESENT, DIRTY):
    walked, pos = [], 0
    while pos < size:
        e = block_status(h, size - pos, pos, nbd.CMD_FLAG_REQ_ONE)[name]
        walked += e
        pos += e[0]
    check(walked == expected(name, 0, size), f"{name}: walked map {walked}")

# Data I/O is unaffected.
h.pwrite(b"\x5a" * 4096, 65536)
check(h.pread(4096, 65536) == b"\x5a" * 4096, "read after write")
got = block_status(h, 131072, 0)
check(got[BASE] == [65536, 3, 65536, 0], f"base:allocation sees the write (64K granules): {got[BASE]}")
check(got[PRESENT] == expected(PRESENT, 0, 131072), "a write does not change the double's map")
h.shutdown()

# ---------------------------------------------------------------- one context alone
h = connect(DIRTY)
check(not h.can_meta_context(BASE) and not h.can_meta_context(PRESENT), "dirty alone")
got = block_status(h, size, 0)
check(list(got) == [DIRTY] and got[DIRTY] == expected(DIRTY, 0, size), f"dirty alone: {got}")
h.shutdown()

# Nothing selected: libnbd refuses BLOCK_STATUS itself.
h = connect("x-r3map:nosuch")
check(not h.can_meta_context(PRESENT), "an unknown context is not chosen")
try:
    h.block_status(4096, 0, lambda *a: 0)
    check(False, "block status without contexts")
except nbd.Error:
    checks += 1
h.shutdown()

print(f"meta contexts ok: {checks} checks")
