#!/usr/bin/python3
"""compare_introspection.py CONTRACT.xml INTROSPECTED.xml

Checks that an object's live introspection (busctl introspect --xml-interface) implements
the interface of the contract in dbus/ exactly: the same methods with the same argument
names, types and directions, the same signals, and the same properties with type, access
and EmitsChangedSignal behaviour. Prints every difference; exit 1 if there is any.
"""
import sys
import xml.etree.ElementTree as ET


def args(element):
    # Signal args have no direction; method args default to "in".
    default = "in" if element.tag == "method" else None
    return [(a.get("name"), a.get("type"), a.get("direction", default)) for a in element.findall("arg")]


def emits(prop, interface):
    for scope in (prop, interface):
        for a in scope.findall("annotation"):
            if a.get("name") == "org.freedesktop.DBus.Property.EmitsChangedSignal":
                return a.get("value")
    return "true"


def describe(interface):
    out = {}
    for m in interface.findall("method"):
        out[("method", m.get("name"))] = args(m)
    for s in interface.findall("signal"):
        out[("signal", s.get("name"))] = args(s)
    for p in interface.findall("property"):
        out[("property", p.get("name"))] = (p.get("type"), p.get("access"), emits(p, interface))
    return out


def main():
    contract = ET.parse(sys.argv[1]).getroot()
    live = ET.parse(sys.argv[2]).getroot()
    problems = []
    for want in contract.findall("interface"):
        name = want.get("name")
        got = live.find(f"interface[@name='{name}']")
        if got is None:
            problems.append(f"{name}: not implemented by the object")
            continue
        w, g = describe(want), describe(got)
        for key in sorted(set(w) | set(g)):
            if key not in g:
                problems.append(f"{name}: {key[0]} {key[1]} missing")
            elif key not in w:
                problems.append(f"{name}: {key[0]} {key[1]} is not in the contract")
            elif w[key] != g[key]:
                problems.append(f"{name}: {key[0]} {key[1]}: contract {w[key]}, live {g[key]}")
        print(f"{name}: {len(w)} members compared")
    for p in problems:
        print("MISMATCH", p)
    return 1 if problems else 0


sys.exit(main())
