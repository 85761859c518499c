#!/usr/bin/env bash
# D-Bus activation: with the installed activation file (dbus/org.r3map.r3mapd.service, its
# Exec pointed at the built daemon), the first call to org.r3map.r3mapd starts r3mapd, which
# answers it; after r3mapd exits, the next call starts it again.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
[ -f "$R3MAPD_ACTIVATION" ] || fail "no activation file at $R3MAPD_ACTIVATION"

echo "== the activation file as meson generates it"
for key in "Name=org.r3map.r3mapd" "User=root" "SystemdService=r3mapd.service"; do
	grep -qx "$key" "$R3MAPD_ACTIVATION" || fail "activation file lacks $key"
done
grep -q "^Exec=/.*/r3mapd$" "$R3MAPD_ACTIVATION" || fail "activation file has no absolute Exec= for r3mapd"
mkdir -p "$TEST_TMP/services"
sed "s|^Exec=.*|Exec=$R3MAPD|" "$R3MAPD_ACTIVATION" >"$TEST_TMP/services/org.r3map.r3mapd.service"

R3_BUS_SERVICEDIR="$TEST_TMP/services" start_bus
name_owned && fail "r3mapd owns the name before anyone called"

# The pid of the name's owner, as the bus knows it (other tests' daemons run on other buses).
daemon_pid() {
	busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
		GetConnectionUnixProcessID s org.r3map.r3mapd 2>/dev/null | sed -n 's/^u //p'
}

echo "== the first call starts r3mapd and gets its answer"
busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 GetVersion >"$TEST_TMP/version" \
	|| { cat "$TEST_TMP/bus/log" >&2; fail "GetVersion did not activate r3mapd"; }
grep -q '^s "' "$TEST_TMP/version" || fail "GetVersion answered: $(cat "$TEST_TMP/version")"
name_owned || fail "r3mapd does not own the name after activation"
pid=$(daemon_pid)
[ -n "$pid" ] || fail "no r3mapd process after activation"
[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$R3MAPD")" ] || fail "the name's owner (pid $pid) is not r3mapd"
track "$pid"
echo "ok: activated as pid $pid: $(cat "$TEST_TMP/version")"
expect_r3ctl 0 ls

echo "== SIGTERM ends it cleanly; the next call starts a new one"
kill -TERM "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "activated r3mapd still running 20 s after SIGTERM"
for _ in $(seq 50); do name_owned || break; sleep 0.1; done
name_owned && fail "the name is still owned after r3mapd exited"
expect_r3ctl 0 --json ls
again=$(daemon_pid)
[ -n "$again" ] && [ "$again" != "$pid" ] || fail "r3ctl ls did not activate a new r3mapd"
track "$again"
echo "ok: activated again as pid $again"
echo PASS
