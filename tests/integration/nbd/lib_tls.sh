# Helpers for the NBD-over-TLS tests; sources ../transport/lib_transport.sh (and ../lib.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../transport/lib_transport.sh"

TLS_PROBE="$(dirname "${BASH_SOURCE[0]}")/nbd_tls_probe.py"

# client_dir NAME CA [CLIENT]: $TEST_TMP/NAME laid out as libnbd's tls-certificates and
# qemu's tls-creds-x509 dir want it: ca-cert.pem, and client-cert.pem/client-key.pem.
client_dir() {
	local dir="$TEST_TMP/$1" certs="$TEST_TMP/certs"
	mkdir -p "$dir"
	cp "$certs/$2.pem" "$dir/ca-cert.pem"
	if [ -n "${3:-}" ]; then
		cp "$certs/$3.pem" "$dir/client-cert.pem"
		cp "$certs/$3.key" "$dir/client-key.pem"
	fi
}

# port_of NAME: the port an r3serve started with --listen 127.0.0.1:0 chose.
port_of() {
	local address
	address=$(tcp_address "$1")
	echo "${address##*:}"
}

# qemu_x509 PORT DIR ARGS...: qemu-img ARGS against the default export on 127.0.0.1:PORT
# with the X.509 credentials in DIR (ARGS: the command and its options, before the image).
qemu_x509() {
	local port=$1 dir=$2 cmd=$3
	shift 3
	qemu-img "$cmd" --object "tls-creds-x509,id=tls0,endpoint=client,dir=$dir" "$@" \
		--image-opts "driver=nbd,host=127.0.0.1,port=$port,tls-creds=tls0"
}

# expect_client_fails NAME PATTERN CMD...: CMD must fail and say PATTERN on stderr/stdout.
expect_client_fails() {
	local name=$1 pattern=$2
	shift 2
	if "$@" >"$TEST_TMP/$name.client" 2>&1; then
		cat "$TEST_TMP/$name.client" >&2
		fail "$name: the client succeeded"
	fi
	grep -q -- "$pattern" "$TEST_TMP/$name.client" || { cat "$TEST_TMP/$name.client" >&2; fail "$name: client did not say '$pattern'"; }
	echo "ok: $name: client says: $(grep -o -- "$pattern.*" "$TEST_TMP/$name.client" | head -1)"
}

# expect_logged SERVER PATTERN: r3serve SERVER's log says PATTERN (waits a moment: the
# server may log after the client has given up).
expect_logged() {
	local i
	for i in $(seq 30); do
		grep -q -- "$2" "$TEST_TMP/$1.log" && { echo "ok: $1 logged: $(grep -o -- "$2.*" "$TEST_TMP/$1.log" | tail -1)"; return 0; }
		sleep 0.1
	done
	cat "$TEST_TMP/$1.log" >&2
	fail "$1 did not log '$2'"
}
