#!/usr/bin/env bash
# Starts a private dbus-daemon that behaves like the system bus (type system, the stock
# default-deny policy) with r3mapd's policy file, for trying and testing r3mapd without
# touching the real system bus. Prints two lines: the bus address and the daemon's pid.
#   scripts/private-system-bus.sh [--foreground] DIR [POLICY_FILE]
#   eval "$(scripts/private-system-bus.sh /tmp/r3bus | sed -n '1s/^/export DBUS_SYSTEM_BUS_ADDRESS=/p')"
# POLICY_FILE defaults to dbus/org.r3map.r3mapd.conf. Stop it with kill PID. With
# --foreground the bus runs in this process (for scripts that start it with &) and only
# the address is printed. With R3_BUS_SERVICEDIR set, the bus activates the services
# whose .service files are in that directory (run as the bus's own user).
set -euo pipefail
foreground=false
if [ "${1:-}" = --foreground ]; then
	foreground=true
	shift
fi
dir=$(realpath -m "$1")
policy=${2:-$(dirname "$0")/../dbus/org.r3map.r3mapd.conf}
rm -rf "$dir/policy"
mkdir -p "$dir/policy"
cp "$policy" "$dir/policy/"
cat >"$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
  </policy>
  <!-- As in the stock system.conf: root may monitor (busctl monitor). -->
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>$dir/policy</includedir>
${R3_BUS_SERVICEDIR:+  <servicedir>$R3_BUS_SERVICEDIR</servicedir>}
</busconfig>
CONF
# Users other than root must reach the socket, as on the real system bus.
chmod 755 "$dir"
if $foreground; then
	exec dbus-daemon --config-file="$dir/bus.conf" --nofork --print-address=1 2>"$dir/log"
fi
dbus-daemon --config-file="$dir/bus.conf" --fork --print-address=1 --print-pid=1 2>"$dir/log"
