#!/usr/bin/python3
"""Random argument values to every method r3mapd offers, on a real bus.

Walks the daemon's objects by introspection (so interfaces added later are covered
without changes here), and calls every org.r3map.* method CALLS times with arguments made
from its signature: strings from a pool of near-valid and hostile values, integers at
their edges, option dictionaries with known and unknown keys and values of every type, fds
of several kinds. Each call must end in a reply or a D-Bus error whose name is the
project's (org.r3map.Error.*) or the bus's access refusal; a timeout, a disconnect or the
daemon losing its name is a failure. Prints the calls made and the errors seen by name.

  dbus_fuzz.py --seed S --calls N [--json FILE]        (DBUS_SYSTEM_BUS_ADDRESS set)
"""

import argparse
import collections
import json
import os
import random
import socket
import sys
import xml.etree.ElementTree as ET

import dbus

SERVICE = "org.r3map.r3mapd"
ROOT = "/org/r3map"
# Errors that are a clean answer. UnknownObject/UnknownMethod: an object went away between
# the walk and the call (a random Unmount may have removed it).
CLEAN = ("org.r3map.Error.", "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InvalidArgs",
         "org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownMethod",
         "org.freedesktop.DBus.Error.UnknownInterface", "org.freedesktop.DBus.Error.PropertyReadOnly")
# Methods anyone may call: they change nothing.
READ_ONLY = {("org.r3map.Manager1", "GetVersion"), ("org.r3map.Manager1", "ListMounts"),
             ("org.r3map.Manager1", "ListExports"), ("org.r3map.Manager1", "ListRegions"),
             ("org.r3map.Manager1", "ListMigrations"), ("org.r3map.Manager1", "ListSyncs")}
# Methods that end the daemon's work on purpose are not called at random.
SKIP = {("org.r3map.Manager1", "Shutdown")}
OPTION_KEYS = ["size", "chunk_size", "read_only", "managed", "cache", "name", "description", "protocol",
               "connections", "timeout", "dead_conn_timeout", "block_size", "pull-workers", "push-interval",
               "order", "pull-first", "pull-rate", "push-rate", "remote-timeout", "background",
               "discard-local", "discard-dirty", "tls", "tls-cert", "tls-key", "tls-ca", "token", "listen",
               "max_request", "colour", "", "x" * 300]


class Values:
    def __init__(self, rng, tmp):
        self.rng = rng
        self.tmp = tmp
        self.strings = ["", "memory:1M", "memory:0", "memory:4K?chunk=512", "memory:18446744073709551615",
                        "file:/etc/shadow", f"file:{tmp}/f?size=1M", f"dir:{tmp}/d?size=1M", "dir:relative",
                        "r3://127.0.0.1:1/x", "redis://127.0.0.1:1/0?size=1M", "s3://127.0.0.1:1/b/k?size=1M",
                        "fault+memory:1M?fault-eio=1", "nfs://x", "127.0.0.1:0", "0.0.0.0:0", "[::1]:0",
                        f"unix:{tmp}/s.sock", "unix:", "unix:/proc/self/x", "::::", "/org/r3map/mounts/1",
                        "debug", "trace", "off", "nbd", "r3", "linear", "hot:/etc/shadow", "10%", "1h", "-1",
                        "1e999", "\u00e9\u0001\u202ex", "../../etc/passwd", "%00", "a" * 4096, "b" * 70000]

    def string(self):
        s = self.rng.choice(self.strings)
        if self.rng.random() < 0.2:
            s = s + self.rng.choice(["?", "&", "?size=", "?size=1T", "#", "\n", " "]) + str(self.rng.randrange(1 << 40))
        return s

    def integer(self, bits, signed):
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return self.rng.choice([lo, hi, 0, 1, 511, 512, 4096, 65536, 3000, hi // 2, self.rng.randint(lo, hi)])

    def fd(self):
        kind = self.rng.randrange(4)
        if kind == 0:
            return dbus.types.UnixFd(os.open("/dev/null", os.O_RDWR))
        if kind == 1:
            r, w = os.pipe()
            os.close(w)
            return dbus.types.UnixFd(r)
        if kind == 2:
            a, b = socket.socketpair()
            b.close()
            return dbus.types.UnixFd(a)
        return dbus.types.UnixFd(os.open(self.tmp, os.O_RDONLY | os.O_DIRECTORY))

    def variant(self):
        pick = self.rng.choice("sbtuiaxd")
        if pick == "a":
            return dbus.Array([self.string()], signature="s", variant_level=1)
        return self.of(pick, variant_level=1)

    def of(self, sig, variant_level=0):
        """A value of the complete type `sig`."""
        kw = {"variant_level": variant_level} if variant_level else {}
        c = sig[0]
        if c == "s":
            return dbus.String(self.string(), **kw)
        if c == "o":
            return dbus.ObjectPath(self.rng.choice(["/", ROOT, ROOT + "/mounts/1", ROOT + "/exports/1",
                                                    ROOT + "/regions/1", ROOT + "/x/" + "y" * 200]), **kw)
        if c == "b":
            return dbus.Boolean(self.rng.random() < 0.5, **kw)
        if c == "y":
            return dbus.Byte(self.rng.randrange(256), **kw)
        if c in "qu t":
            bits = {"q": 16, "u": 32, "t": 64}[c]
            cls = {"q": dbus.UInt16, "u": dbus.UInt32, "t": dbus.UInt64}[c]
            return cls(self.integer(bits, False), **kw)
        if c in "nix":
            bits = {"n": 16, "i": 32, "x": 64}[c]
            cls = {"n": dbus.Int16, "i": dbus.Int32, "x": dbus.Int64}[c]
            return cls(self.integer(bits, True), **kw)
        if c == "d":
            return dbus.Double(self.rng.choice([0.0, -1.0, 1e308, float("nan"), float("inf")]), **kw)
        if c == "h":
            return self.fd()
        if c == "v":
            return self.variant()
        if sig.startswith("a{"):
            key, value = sig[2], sig[3:-1]
            d = {}
            for _ in range(self.rng.randrange(6)):
                k = self.rng.choice(OPTION_KEYS) if key == "s" else self.of(key)
                d[k] = self.of(value)
            return dbus.Dictionary(d, signature=key + value, **kw)
        if c == "a":
            inner = sig[1:]
            return dbus.Array([self.of(inner) for _ in range(self.rng.randrange(4))], signature=inner, **kw)
        raise ValueError(f"no generator for signature {sig}")


def split_signature(sig):
    """'sa{sv}h' -> ['s', 'a{sv}', 'h']."""
    out, i = [], 0
    while i < len(sig):
        j = i
        while sig[j] == "a":
            j += 1
        if sig[j] in "{(":
            depth, k = 0, j
            while True:
                depth += sig[k] in "{("
                depth -= sig[k] in "})"
                k += 1
                if depth == 0:
                    break
            j = k
        else:
            j += 1
        out.append(sig[i:j])
        i = j
    return out


def walk(bus, path="/org/r3map", found=None):
    """{(path, interface, method): [in-arg signatures]} for every org.r3map.* method."""
    found = {} if found is None else found
    xml = dbus.Interface(bus.get_object(SERVICE, path), "org.freedesktop.DBus.Introspectable").Introspect()
    root = ET.fromstring(xml)
    for iface in root.findall("interface"):
        name = iface.get("name")
        if not name.startswith("org.r3map."):
            continue
        for m in iface.findall("method"):
            ins = [a.get("type") for a in m.findall("arg") if a.get("direction", "in") == "in"]
            found[(path, name, m.get("name"))] = ins
    for node in root.findall("node"):
        walk(bus, path.rstrip("/") + "/" + node.get("name"), found)
    return found


def alive(bus):
    return bool(dbus.Interface(bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus"),
                               "org.freedesktop.DBus").NameHasOwner(SERVICE))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--calls", type=int, default=40, help="calls per method")
    p.add_argument("--tmp", default="/tmp")
    p.add_argument("--json")
    p.add_argument("--keep-export", action="append", default=[], metavar="URI",
                   help="at each round, export URI again (managed when it starts with managed:) if random calls stopped it")
    p.add_argument("--expect-refused", action="store_true",
                   help="a caller outside the access group: every state-changing call must be refused")
    opts = p.parse_args()
    rng = random.Random(opts.seed)
    values = Values(rng, opts.tmp)
    bus = dbus.SystemBus()
    methods = walk(bus)
    if not methods:
        print("FAIL: no org.r3map methods found by introspection", file=sys.stderr)
        return 1
    errors = collections.Counter()
    replies = 0
    failures = []
    manager = dbus.Interface(bus.get_object(SERVICE, ROOT), "org.r3map.Manager1")
    called = set()
    for n in range(opts.calls):
        # Random calls stop exports; bring them back so every round reaches object methods.
        exported = {str(dbus.Interface(bus.get_object(SERVICE, p), "org.freedesktop.DBus.Properties")
                        .Get("org.r3map.Export1", "BackendUri")) for p in manager.ListExports()}
        for uri in opts.keep_export:
            managed = uri.startswith("managed:")
            uri = uri[len("managed:"):] if managed else uri
            if uri not in exported:
                options = {"managed": dbus.Boolean(True, variant_level=1)} if managed else {}
                manager.Export(uri, "127.0.0.1:0", dbus.Dictionary(options, signature="sv"))
        methods = walk(bus)
        plan = [m for m in sorted(methods) if (m[1], m[2]) not in SKIP]
        called.update((i, m) for _, i, m in plan)
        for path, iface, method in plan:
            sigs = methods[(path, iface, method)]
            # Now and then a wrong arity or a wrong type, which the bus library must refuse.
            if rng.random() < 0.05:
                sigs = sigs[:-1] if sigs and rng.random() < 0.5 else sigs + ["s"]
            try:
                args = [values.of(s) for s in sigs]
                obj = bus.get_object(SERVICE, path, introspect=False)
                getattr(dbus.Interface(obj, iface), method)(*args, timeout=30, signature="".join(sigs))
                replies += 1
                if opts.expect_refused and (iface, method) not in READ_ONLY:
                    failures.append(f"{iface}.{method} on {path} was accepted from a caller outside the access group")
            except (ValueError, TypeError, OverflowError):
                errors["(refused by dbus-python before sending)"] += 1
            except dbus.exceptions.DBusException as e:
                name = e.get_dbus_name() or "?"
                errors[name] += 1
                if not name.startswith(CLEAN):
                    failures.append(f"{iface}.{method} on {path}: {name}: {e.get_dbus_message()}"[:400])
            if not alive(bus):
                failures.append(f"r3mapd lost its name after {iface}.{method} on {path}")
                break
        if failures and not alive(bus):
            break
    calls = replies + sum(errors.values())
    print(f"{calls} calls to {len(called)} methods (uid {os.getuid()}, seed {opts.seed}): {replies} replies; "
          + ", ".join(f"{n} {e}" for e, n in errors.most_common()))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"calls": calls, "methods": sorted(f"{i}.{m}" for i, m in called), "replies": replies, "errors": dict(errors),
                       "failures": failures}, f, indent=1)
    for f in failures[:20]:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
