# Helpers for the transport and store integration tests; sources ../lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# The npm packages scripts/bootstrap.sh installs, outside the source tree.
R3_NPM_CACHE=${R3_NPM_CACHE:-$HOME/.cache/r3map/npm}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
	local port=$1 limit=${2:-20} i
	for i in $(seq $((limit * 10))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_redis NAME PORT [redis-server args]: a private redis-server (PORT "" for a free
# one), data in $TEST_TMP/NAME; sets NAME_port and NAME_pid.
start_redis() {
	local name=$1 port=$2
	shift 2
	require redis-server
	[ -n "$port" ] || port=$(free_port)
	mkdir -p "$TEST_TMP/$name"
	redis-server --bind 127.0.0.1 --port "$port" --dir "$TEST_TMP/$name" --save '' --appendonly no \
		--daemonize no "$@" >>"$TEST_TMP/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	wait_port "$port" || { cat "$TEST_TMP/$name.log" >&2; fail "redis-server did not start"; }
	eval "${name}_port=$port ${name}_pid=$pid"
}

# start_s3rver NAME BUCKET: s3rver (npm, pinned by bootstrap) on a free port; sets
# NAME_port and NAME_pid. Skips when it is not installed.
start_s3rver() {
	local name=$1 bucket=$2
	local bin="$R3_NPM_CACHE/node_modules/.bin/s3rver"
	[ -x "$bin" ] || skip "s3rver is not installed in $R3_NPM_CACHE (run scripts/bootstrap.sh)"
	require node
	local port
	port=$(free_port)
	mkdir -p "$TEST_TMP/$name"
	"$bin" -d "$TEST_TMP/$name" -a 127.0.0.1 -p "$port" --configure-bucket "$bucket" --silent \
		>"$TEST_TMP/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	wait_port "$port" 30 || { cat "$TEST_TMP/$name.log" >&2; fail "s3rver did not start"; }
	eval "${name}_port=$port ${name}_pid=$pid"
}

# make_certs: CA, server, client and rogue certificates in $TEST_TMP/certs.
make_certs() {
	"$(dirname "${BASH_SOURCE[0]}")/../../support/make_test_certs.sh" "$TEST_TMP/certs"
}

# round_trip SRC NBD_URI: copy SRC in and back out, compare.
round_trip() {
	local src=$1 uri=$2
	rm -f "$TEST_TMP/back.bin"
	nbdcopy "$src" "$uri" || fail "nbdcopy into $uri failed"
	nbdcopy "$uri" "$TEST_TMP/back.bin" || fail "nbdcopy out of $uri failed"
	cmp "$src" "$TEST_TMP/back.bin" || fail "data differs after a round trip via $uri"
}

# expect_refused NAME PATTERN R3SERVE-ARGS...: r3serve must fail to start (exit 1) and say
# something matching PATTERN.
expect_refused() {
	local name=$1 pattern=$2
	shift 2
	local status=0
	"$R3SERVE" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log" || status=$?
	[ "$status" -eq 1 ] || { cat "$TEST_TMP/$name.log" >&2; fail "$name: r3serve exited $status, wanted 1"; }
	grep -q -- "$pattern" "$TEST_TMP/$name.log" || { cat "$TEST_TMP/$name.log" >&2; fail "$name: no '$pattern' in the message"; }
	echo "ok: $name refused: $(grep -o -- "$pattern.*" "$TEST_TMP/$name.log" | head -1)"
}

# throttled_cat FILE MIB_PER_S: FILE on stdout at about that rate, so a copy fed from it
# lasts long enough to be interrupted.
throttled_cat() {
	/usr/bin/python3 -c '
import sys, time
rate = float(sys.argv[2])
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b: break
        sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(1 / rate)
' "$1" "$2"
}
