# Shared by the examples' run.sh scripts: r3serve processes in $work, tracked in pids.
# Source after setting r3serve, work and pids=().

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
