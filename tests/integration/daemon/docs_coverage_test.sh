#!/usr/bin/env bash
# r3map-dbus(7) documents every method, property and signal of the XML contract and every
# error the daemon can return, and each method's errors as the XML and the code have them;
# r3ctl(1) documents every command r3ctl has.
source "$(dirname "$0")/../lib.sh"
src=$R3MAP_SOURCE_DIR

python3 - "$src" <<'PY' || fail "r3map-dbus(7) is incomplete"
import re, sys, xml.etree.ElementTree as ET
src = sys.argv[1]
page = open(f"{src}/man/r3map-dbus.7.scd").read()
missing = []
for iface in ("Manager1", "Mount1", "Export1", "Managed1", "Region1", "Migration1", "Sync1"):
    root = ET.parse(f"{src}/dbus/org.r3map.{iface}.xml").getroot()
    # The page has one section per interface; members must be in their own section.
    section = page.split(f"# org.r3map.{iface}\n", 1)[1].split("\n# ", 1)[0]
    for kind in ("method", "property", "signal"):
        for m in root.iter(kind):
            if f"*{m.get('name')}*" not in section:
                missing.append(f"{iface} {kind} {m.get('name')}")
errors = re.findall(r'\{ Errc::\w+, "(\w+)" \}', open(f"{src}/daemon/errors.cpp").read())
assert len(errors) >= 10, errors
for e in errors:
    if f"*{e}*" not in page:
        missing.append(f"error {e}")
for m in missing:
    print("undocumented:", m)
sys.exit(1 if missing else 0)
PY

python3 "$(dirname "$0")/check_error_lists.py" "$src" || fail "a method's documented errors and its code disagree"

for command in $("$R3CTL" --help | awk '/^  [a-z]/{print $1}'); do
	grep -q "^\*$command\*" "$src/man/r3ctl.1.scd" || fail "r3ctl(1) does not document '$command'"
done
echo PASS
