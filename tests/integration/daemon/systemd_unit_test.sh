#!/usr/bin/env bash
# The built unit passes systemd-analyze verify without a single complaint, and carries the
# service type, bus name, watchdog and hardening the daemon is designed for.
source "$(dirname "$0")/../lib.sh"
require systemd-analyze

# verify checks that ExecStart exists: point it at the built daemon.
sed "s|^ExecStart=.*|ExecStart=$R3MAPD|" "$R3MAPD_UNIT" >"$TEST_TMP/r3mapd.service"
systemd-analyze verify --man=no "$TEST_TMP/r3mapd.service" >"$TEST_TMP/verify" 2>&1 \
	|| { cat "$TEST_TMP/verify"; fail "systemd-analyze verify failed"; }
[ ! -s "$TEST_TMP/verify" ] || { cat "$TEST_TMP/verify"; fail "systemd-analyze verify complained"; }

# The check above must be able to fail.
echo "Bogus=1" >>"$TEST_TMP/r3mapd.service"
systemd-analyze verify --man=no "$TEST_TMP/r3mapd.service" >"$TEST_TMP/verify" 2>&1 || true
grep -q "Unknown key 'Bogus'" "$TEST_TMP/verify" || fail "verify did not notice a bad key"

for line in Type=notify BusName=org.r3map.r3mapd WatchdogSec= ProtectSystem=strict ProtectHome=true PrivateTmp=true \
	NoNewPrivileges=true "DeviceAllow=block-nbd rw" DevicePolicy=closed CapabilityBoundingSet= \
	ProtectKernelTunables=true Wants=remote-fs-pre.target Before=remote-fs-pre.target; do
	grep -q "^$line" "$R3MAPD_UNIT" || fail "the unit lacks $line"
done
# Nothing beyond what attaching devices and serving exports needs.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$R3MAPD_UNIT")
[ "$caps" = "CAP_SYS_ADMIN CAP_NET_ADMIN CAP_SYS_RESOURCE CAP_NET_BIND_SERVICE CAP_SYS_PTRACE" ] || fail "capabilities: $caps"
systemd-analyze security --offline=true "$R3MAPD_UNIT" 2>/dev/null | tail -n1 || true
echo PASS
