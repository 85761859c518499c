# Helpers for the r3mapd tests: a private dbus-daemon of type system with the project's
# own policy file, and r3mapd on it. Source after ../lib.sh.
# Meson passes R3MAPD, R3CTL, R3MAP_DBUS_DIR (the source dbus/ folder) and R3MAP_SOURCE_DIR.

require dbus-daemon busctl setpriv python3

# start_bus [POLICY_FILE]: a system-like bus in $TEST_TMP/bus with POLICY_FILE (default:
# dbus/org.r3map.r3mapd.conf) as its only service policy (scripts/private-system-bus.sh).
# Exports DBUS_SYSTEM_BUS_ADDRESS; sets bus_pid.
start_bus() {
	local dir=$TEST_TMP/bus
	rm -f "$TEST_TMP/bus.address"
	"$R3MAP_SOURCE_DIR/scripts/private-system-bus.sh" --foreground "$dir" \
		"${1:-$R3MAP_DBUS_DIR/org.r3map.r3mapd.conf}" >"$TEST_TMP/bus.address" &
	bus_pid=$!
	track "$bus_pid"
	wait_for_file "$TEST_TMP/bus.address" || { cat "$dir/log" >&2; fail "dbus-daemon did not start"; }
	export DBUS_SYSTEM_BUS_ADDRESS=$(sed -n 1p "$TEST_TMP/bus.address")
	# Running users must reach the socket below it, as on a real system bus.
	chmod 755 "$TEST_TMP"
}

name_owned() {
	busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s \
		org.r3map.r3mapd 2>/dev/null | grep -qx 'b true'
}

# r3mapd_namespace COMMAND: r3mapd started after this runs in a mount namespace of its
# own, prepared by COMMAND (sh; several calls add up). The host stays untouched; its later
# mounts propagate in, as into a systemd service's namespace.
r3mapd_namespace() {
	R3MAPD_NS_SETUP="${R3MAPD_NS_SETUP:+$R3MAPD_NS_SETUP && }$1"
}

# with_group_members LINE...: r3mapd sees /etc/group plus these lines (e.g.
# "r3map-it:x:4242:nobody"): the daemon decides membership from the group database.
with_group_members() {
	cp /etc/group "$TEST_TMP/etc-group"
	printf '%s\n' "$@" >>"$TEST_TMP/etc-group"
	r3mapd_namespace "mount --bind '$TEST_TMP/etc-group' /etc/group"
}

# protect_kernel_tunables: r3mapd sees /sys and /proc/sys read-only, as under the unit's
# ProtectKernelTunables=yes.
protect_kernel_tunables() {
	r3mapd_namespace "mount -o remount,bind,ro /sys && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys"
}

# start_r3mapd NAME [ARGS...]: r3mapd in the background, log in $TEST_TMP/NAME.log;
# returns once it owns org.r3map.r3mapd. Sets NAME_pid.
start_r3mapd() {
	local name=$1
	shift
	local wrap=()
	if [ -n "${R3MAPD_NS_SETUP:-}" ]; then
		# unshare and sh exec: the pid is r3mapd's.
		wrap=(unshare --mount --propagation slave -- sh -c "$R3MAPD_NS_SETUP"' && exec "$@"' sh)
	fi
	"${wrap[@]}" "$R3MAPD" "$@" >"$TEST_TMP/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	local i
	for i in $(seq 100); do
		name_owned && break
		kill -0 "$pid" 2>/dev/null || { cat "$TEST_TMP/$name.log" >&2; fail "r3mapd $name exited at startup"; }
		sleep 0.1
	done
	name_owned || { cat "$TEST_TMP/$name.log" >&2; fail "r3mapd $name did not own the name"; }
	eval "${name}_pid=$pid"
}

# stop_r3mapd NAME: SIGTERM; fails unless it exits 0 within 20 s.
stop_r3mapd() {
	local pid_var="${1}_pid"
	local pid=${!pid_var}
	kill -TERM "$pid"
	local status=0 i
	for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "r3mapd $1 still running 20 s after SIGTERM"
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || { cat "$TEST_TMP/$1.log" >&2; fail "r3mapd $1 exited with $status"; }
}

# run_r3ctl [--as UID[:GID[:GROUPS]]] ARGS...: runs r3ctl, stdout in $TEST_TMP/out,
# stderr in $TEST_TMP/err, exit status in $rc.
run_r3ctl() {
	local prefix=()
	if [ "${1:-}" = "--as" ]; then
		local uid gid groups
		IFS=: read -r uid gid groups <<<"$2"
		prefix=(setpriv --reuid="$uid" --regid="${gid:-$uid}")
		if [ -n "${groups:-}" ]; then prefix+=(--groups="$groups"); else prefix+=(--clear-groups); fi
		shift 2
	fi
	rc=0
	"${prefix[@]}" "$R3CTL" "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || rc=$?
}

# expect_r3ctl CODE ARGS...: run_r3ctl and fail unless it exits CODE.
expect_r3ctl() {
	local want=$1
	shift
	run_r3ctl "$@"
	[ "$rc" -eq "$want" ] || { cat "$TEST_TMP/out" "$TEST_TMP/err" >&2; fail "r3ctl $* exited $rc, wanted $want"; }
}

# The D-Bus error name of the last --json r3ctl run.
json_error() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$TEST_TMP/out"
}

# json_field EXPR: evaluates EXPR on the last --json output bound to j.
json_field() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$TEST_TMP/out" "$1"
}

# The daemon answers and still owns its name.
daemon_alive() {
	busctl --system call org.r3map.r3mapd /org/r3map org.r3map.Manager1 GetVersion >/dev/null \
		|| fail "r3mapd no longer answers"
}

# expect_error NAME TEXT METHOD ARGS...: a Manager1 call (arguments in GVariant text, so
# the caller requires gdbus) fails with org.r3map.Error.NAME and a message containing TEXT;
# the daemon is still up.
expect_error() {
	local name=$1 text=$2 method=$3
	shift 3
	gdbus call --system --dest org.r3map.r3mapd --object-path /org/r3map --method "org.r3map.Manager1.$method" "$@" \
		>"$TEST_TMP/reply" 2>&1 && fail "$method $* succeeded"
	grep -qF "GDBus.Error:org.r3map.Error.$name: " "$TEST_TMP/reply" \
		|| fail "$method $*: wanted org.r3map.Error.$name, got: $(cat "$TEST_TMP/reply")"
	grep -qF -- "$text" "$TEST_TMP/reply" || fail "$method $*: wanted '$text', got: $(cat "$TEST_TMP/reply")"
	daemon_alive
}
