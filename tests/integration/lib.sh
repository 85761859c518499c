# Shared helpers for the integration test scripts (bash). Source it first thing.
# Meson passes the binaries in the environment: R3SERVE, ...
set -euo pipefail

# Meson reports exit 77 as SKIP: a missing prerequisite must never look like a pass.
skip() {
	echo "SKIP: $*" >&2
	exit 77
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

require() {
	local cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || skip "$cmd is not installed"
	done
}

# The system python has the nbd module; a pyenv python earlier in PATH does not.
export PATH="/usr/bin:$PATH"

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/r3it-XXXXXX")
_pids=()
_cleanup() {
	local pid
	for pid in "${_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${_pids[@]}"; do
		# Give servers a moment to flush, then make sure they are gone.
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$TEST_TMP"
}
trap _cleanup EXIT

# track PID: kill it on exit.
track() {
	_pids+=("$1")
}

# wait_for_file FILE [SECONDS]: until FILE exists and is not empty.
wait_for_file() {
	local file=$1 limit=${2:-20} i
	for i in $(seq $((limit * 10))); do
		[ -s "$file" ] && return 0
		sleep 0.1
	done
	return 1
}

# start_r3serve NAME ARGS...: runs r3serve in the background with a pid file and a log
# in $TEST_TMP/NAME.{pid,log}; returns once it accepts connections.
start_r3serve() {
	local name=$1
	shift
	"$R3SERVE" --pid-file "$TEST_TMP/$name.pid" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log" &
	local pid=$!
	track "$pid"
	if ! wait_for_file "$TEST_TMP/$name.pid"; then
		cat "$TEST_TMP/$name.log" >&2
		fail "r3serve $name did not start"
	fi
	eval "${name}_pid=$pid"
}

# tcp_address NAME: the HOST:PORT an r3serve started with --listen 127.0.0.1:0 chose
# (r3serve prints it on stdout once it accepts connections).
tcp_address() {
	head -n1 "$TEST_TMP/$1.out"
}

unix_uri() {
	echo "nbd+unix:///${2:-}?socket=$1"
}

# stop_r3serve NAME: SIGTERM and wait; fails unless it exits 0.
stop_r3serve() {
	local pid_var="${1}_pid"
	local pid=${!pid_var}
	kill -TERM "$pid"
	local status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || { cat "$TEST_TMP/$1.log" >&2; fail "r3serve $1 exited with $status"; }
}
