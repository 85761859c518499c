# Helpers for the managed-mount integration tests; sources ../transport/lib_transport.sh.
# A remote is `r3serve --r3` on a fixed port (so its r3:// URI, which the cache's journal
# records, stays the same across restarts); a managed server is `r3serve --managed --socket`.
source "$(dirname "${BASH_SOURCE[0]}")/../transport/lib_transport.sh"

# start_remote NAME PORT BACKEND: an r3 export named "disk" on 127.0.0.1:PORT.
start_remote() {
	local name=$1 port=$2 backend=$3
	rm -f "$TEST_TMP/$name.pid" # a killed instance's, which start_r3serve would take for the new one's
	start_r3serve "$name" --r3 --listen "127.0.0.1:$port" --name disk "$backend"
}

# remote_uri PORT [PARAMS]: the r3:// URI of a remote started by start_remote.
remote_uri() {
	echo "r3://127.0.0.1:$1/disk${2:+?$2}"
}

# start_managed NAME REMOTE_URI ARGS...: r3serve --managed on $TEST_TMP/NAME.sock.
start_managed() {
	local name=$1 uri=$2
	shift 2
	rm -f "$TEST_TMP/$name.pid"
	start_r3serve "$name" --managed --socket "$TEST_TMP/$name.sock" "$@" "$uri"
}

managed_uri() {
	unix_uri "$TEST_TMP/$1.sock"
}

# read_remote PORT OUT: the remote's whole content, read through a direct (unmanaged)
# r3serve of it, into OUT.
read_remote() {
	local port=$1 out=$2
	start_r3serve direct --socket "$TEST_TMP/direct.sock" "$(remote_uri "$port")"
	rm -f "$out"
	nbdcopy "$(unix_uri "$TEST_TMP/direct.sock")" "$out" || fail "cannot read the remote through a direct export"
	stop_r3serve direct
}

# write_remote PORT IN: IN written to the start of the remote, through a direct r3serve of it.
write_remote() {
	local port=$1 in=$2
	start_r3serve seed --socket "$TEST_TMP/seed.sock" "$(remote_uri "$port")"
	nbdcopy "$in" "$(unix_uri "$TEST_TMP/seed.sock")" || fail "cannot write the remote through a direct export"
	stop_r3serve seed
}

sha() {
	sha256sum "$1" | cut -d' ' -f1
}

# nbd_py URI CODE...: runs python with `h` connected to URI (the nbd module of libnbd).
nbd_py() {
	local uri=$1
	shift
	/usr/bin/python3 -c "
import nbd, sys, errno
h = nbd.NBD()
h.connect_uri(sys.argv[1])
$*
" "$uri"
}

require_nbd_python() {
	/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"
}

# pattern_file FILE LENGTH SEED: LENGTH deterministic pseudo-random bytes in FILE.
pattern_file() {
	/usr/bin/python3 -c '
import random, sys
r = random.Random(int(sys.argv[3]))
sys.stdout.buffer.write(r.randbytes(int(sys.argv[2])))' "$1" "$2" "$3" >"$1"
}

# hold_nbd_py NAME URI CODE: nbd_py URI CODE in the background, its connection then kept
# open until release_nbd_py NAME: the server flushes an export at the disconnect of a
# client that wrote, which kicks the pusher. Returns once CODE ran; sets NAME_pid.
hold_nbd_py() {
	local name=$1 uri=$2
	nbd_py "$uri" "$3
import os, time
open('$TEST_TMP/$name.ready', 'w').write('ready')
while not os.path.exists('$TEST_TMP/$name.done'):
    time.sleep(0.05)
" &
	eval "${name}_pid=$!"
	track "$!"
	wait_for_file "$TEST_TMP/$name.ready" 30 || fail "the $name client did not get ready"
}

# release_nbd_py NAME: lets the client of hold_nbd_py NAME disconnect; fails if it failed.
release_nbd_py() {
	local pid_var="${1}_pid"
	touch "$TEST_TMP/$1.done"
	wait "${!pid_var}" || fail "the $1 client failed"
}

# overlay IMAGE OFFSET FILE: writes FILE into IMAGE at OFFSET (the expected content).
overlay() {
	dd if="$3" of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}
