#!/usr/bin/env bash
# The live objects implement the contract in dbus/ exactly (Manager1 + ObjectManager at
# /org/r3map, Export1 on an export, Export1 + Managed1 on a managed export); Mount1 is
# compared in the vm suite, where mounts work.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
compare="$(dirname "$0")/compare_introspection.py"

start_bus
start_r3mapd d

echo "== /org/r3map implements Manager1 as in org.r3map.Manager1.xml"
busctl --system introspect --xml-interface org.r3map.r3mapd /org/r3map >"$TEST_TMP/root.xml"
python3 "$compare" "$R3MAP_DBUS_DIR/org.r3map.Manager1.xml" "$TEST_TMP/root.xml" || fail "Manager1 differs from the XML"
grep -q 'interface name="org.freedesktop.DBus.ObjectManager"' "$TEST_TMP/root.xml" || fail "no ObjectManager at /org/r3map"

echo "== an export implements Export1 as in org.r3map.Export1.xml and shows up in the tree"
expect_r3ctl 0 export memory:1M --listen 127.0.0.1:0
busctl --system introspect --xml-interface org.r3map.r3mapd /org/r3map/exports/1 >"$TEST_TMP/export.xml"
python3 "$compare" "$R3MAP_DBUS_DIR/org.r3map.Export1.xml" "$TEST_TMP/export.xml" || fail "Export1 differs from the XML"
busctl --system tree org.r3map.r3mapd >"$TEST_TMP/tree"
grep -q '/org/r3map/exports/1' "$TEST_TMP/tree" || { cat "$TEST_TMP/tree"; fail "export not in the object tree"; }

echo "== a managed export implements Export1 and Managed1 as in the XML, announced together"
expect_r3ctl 0 export memory:1M --listen 127.0.0.1:0 --managed
busctl --system introspect --xml-interface org.r3map.r3mapd /org/r3map/exports/2 >"$TEST_TMP/managed.xml"
python3 "$compare" "$R3MAP_DBUS_DIR/org.r3map.Export1.xml" "$TEST_TMP/managed.xml" || fail "managed: Export1 differs from the XML"
python3 "$compare" "$R3MAP_DBUS_DIR/org.r3map.Managed1.xml" "$TEST_TMP/managed.xml" || fail "Managed1 differs from the XML"
busctl --system call org.r3map.r3mapd /org/r3map org.freedesktop.DBus.ObjectManager GetManagedObjects >"$TEST_TMP/objects"
grep -q '"/org/r3map/exports/2" .*"Kind" s "managed" .*"org.r3map.Managed1" 11 .*"State" s "' "$TEST_TMP/objects" \
	|| { cat "$TEST_TMP/objects"; fail "GetManagedObjects of a managed export"; }
expect_r3ctl 0 unexport 2

echo "== the comparison itself catches a difference"
sed 's/name="Listen" type="s"/name="Listen" type="u"/' "$R3MAP_DBUS_DIR/org.r3map.Export1.xml" >"$TEST_TMP/wrong.xml"
python3 "$compare" "$TEST_TMP/wrong.xml" "$TEST_TMP/export.xml" >"$TEST_TMP/cmp" && fail "a changed property type went unnoticed"
grep -q "MISMATCH org.r3map.Export1: property Listen" "$TEST_TMP/cmp" || fail "mismatch not named"

echo "== ObjectManager announces and withdraws objects"
busctl --system call org.r3map.r3mapd /org/r3map org.freedesktop.DBus.ObjectManager GetManagedObjects >"$TEST_TMP/managed"
grep -q '"/org/r3map/exports/1" .*"org.r3map.Export1" 10 .*"Kind" s "direct" .*"Listen" s "127.0.0.1:' "$TEST_TMP/managed" || { cat "$TEST_TMP/managed"; fail "GetManagedObjects"; }
grep -q '"org.r3map.Managed1"' "$TEST_TMP/managed" && fail "a direct export implements Managed1"
timeout 10 busctl --system monitor --match "type='signal',sender='org.r3map.r3mapd',interface='org.freedesktop.DBus.ObjectManager'" \
	>"$TEST_TMP/signals" 2>&1 &
monitor=$!
track "$monitor"
for _ in $(seq 100); do grep -q "Monitoring bus message stream" "$TEST_TMP/signals" && break; sleep 0.1; done
expect_r3ctl 0 export memory:1M --listen 127.0.0.1:0 --managed
expect_r3ctl 0 unexport 3
for _ in $(seq 50); do grep -q InterfacesRemoved "$TEST_TMP/signals" && break; sleep 0.1; done
kill "$monitor" 2>/dev/null || true
grep -q 'Member=InterfacesAdded' "$TEST_TMP/signals" || { cat "$TEST_TMP/signals"; fail "no InterfacesAdded"; }
grep -q 'Member=InterfacesRemoved' "$TEST_TMP/signals" || { cat "$TEST_TMP/signals"; fail "no InterfacesRemoved"; }
grep -q '/org/r3map/exports/3' "$TEST_TMP/signals" || fail "signals do not name the export"
# One InterfacesAdded naming both interfaces of the managed export, one InterfacesRemoved.
[ "$(grep -c 'Member=InterfacesAdded' "$TEST_TMP/signals")" = 1 ] || { cat "$TEST_TMP/signals"; fail "InterfacesAdded count"; }
grep -q '"org.r3map.Managed1"' "$TEST_TMP/signals" || { cat "$TEST_TMP/signals"; fail "Managed1 not announced"; }

stop_r3mapd d
echo PASS
