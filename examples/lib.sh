# Shared by the examples' run.sh scripts: r3serve processes in $work, tracked in pids.
# Source it, then call make_work NAME; serve needs r3serve set.

# make_work NAME: a scratch directory $work, removed on exit, and pids, the processes to
# kill then; a script's own before_cleanup (unmounts, unexports) runs first if defined.
make_work() {
	work=$(mktemp -d "/tmp/r3$1.XXXXXX")
	pids=()
	trap cleanup_work EXIT
}

cleanup_work() {
	if declare -F before_cleanup >/dev/null; then before_cleanup; fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}

# serve NAME ARGS...: r3serve in the background; returns once it accepts connections.
serve() {
	local name=$1
	shift
	rm -f "$work/$name.pid"
	"$r3serve" --pid-file "$work/$name.pid" "$@" >"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	for _ in $(seq 600); do [ -s "$work/$name.pid" ] && return; sleep 0.05; done
	cat "$work/$name.log" >&2
	exit 1
}

# stop NAME: SIGTERM and wait until it has gone (its last log lines are written then).
stop() {
	local pid
	pid=$(cat "$work/$1.pid")
	kill -TERM "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# served NAME FIELD: a figure from the "served: ..." line r3serve logs when it stops.
served() {
	sed -n "s/.*served: .* \([0-9][0-9]*\) $2.*/\1/p" "$work/$1.log" | tail -n1
}

# private_r3mapd DIR: a private system bus in DIR/bus (scripts/private-system-bus.sh) and
# an r3mapd on it (needs r3mapd set) with its state in DIR/state, its region socket
# DIR/regions.sock and its log DIR/r3mapd.log; returns once the daemon owns its name, with
# the bus address in r3mapd_bus. Two calls give two independent daemons ("hosts").
private_r3mapd() {
	local dir=$1
	mkdir -p "$dir"
	"$(dirname "${BASH_SOURCE[0]}")/../scripts/private-system-bus.sh" --foreground "$dir/bus" >"$dir/bus.address" &
	pids+=($!)
	for _ in $(seq 200); do [ -s "$dir/bus.address" ] && break; sleep 0.05; done
	r3mapd_bus=$(sed -n 1p "$dir/bus.address")
	[ -n "$r3mapd_bus" ] || { echo "no private bus in $dir/bus" >&2; exit 1; }
	echo "{\"state_dir\": \"$dir/state\", \"region_socket\": \"$dir/regions.sock\"}" >"$dir/r3mapd.json"
	DBUS_SYSTEM_BUS_ADDRESS=$r3mapd_bus "$r3mapd" --config "$dir/r3mapd.json" >"$dir/r3mapd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do
		DBUS_SYSTEM_BUS_ADDRESS=$r3mapd_bus busctl --system status org.r3map.r3mapd >/dev/null 2>&1 && return
		sleep 0.05
	done
	cat "$dir/r3mapd.log" >&2
	echo "r3mapd in $dir did not start" >&2
	exit 1
}
