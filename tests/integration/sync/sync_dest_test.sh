#!/usr/bin/env bash
# `r3sync serve --dest URI`: pushes into a backend instead of a directory. For file: and
# dir: targets (8M, the source 5M): the first push copies, a change sends one chunk, a
# restarted serve rehashes the target and only the short last chunk goes again, and a
# source larger than the target fails with ENOSPC while the target keeps what it had.
# (memory: is in the unit tests: nothing outside the process sees it.)
source "$(dirname "$0")/../lib.sh"
[ -x "${R3SYNC:-}" ] || skip "r3sync is not built"
src=$TEST_TMP/src.img
head -c 5000000 /dev/urandom >"$src"

serve() { # URI: an r3sync serve --dest URI; sets addr
	: >"$TEST_TMP/serve.out"
	"$R3SYNC" serve --listen 127.0.0.1:0 --dest "$1" >"$TEST_TMP/serve.out" 2>>"$TEST_TMP/serve.log" &
	serve_pid=$!
	track $serve_pid
	wait_for_file "$TEST_TMP/serve.out" || fail "r3sync serve --dest $1 did not start"
	addr=$(sed -n 's/^listening //p' "$TEST_TMP/serve.out")
}
push() { # expected chunks changed
	local out
	out=$("$R3SYNC" push "$src" --to "r3://$addr" --chunk-size 256K --once --json) || fail "push to $uri failed"
	changed=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["chunks_changed"])' "$out")
	[ "$changed" = "$1" ] || fail "push to $uri: $changed chunks changed, not $1"
}
same() { # READ_COMMAND...: its first 5000000 bytes are the source's
	"$@" >"$TEST_TMP/back.img" || fail "cannot read $uri back"
	cmp -s -n "$(stat -c %s "$src")" "$TEST_TMP/back.img" "$src" || fail "$uri differs from the source"
}

for kind in file dir; do
	case $kind in
	file) uri="file:$TEST_TMP/target.img?size=8M" read=(cat "$TEST_TMP/target.img") ;;
	dir) uri="dir:$TEST_TMP/chunks?size=8M&chunk=64K" read=(sh -c "cat '$TEST_TMP'/chunks/*.chunk") ;;
	esac
	head -c 5000000 /dev/urandom >"$src"
	serve "$uri"
	push 20
	same "${read[@]}"
	printf 'xyz' | dd of="$src" bs=1 seek=3000000 conv=notrunc 2>/dev/null
	push 1
	same "${read[@]}"
	kill $serve_pid && wait $serve_pid 2>/dev/null || true
	serve "$uri"
	# Rehashed at the target's 8M, the source's short last chunk reads whole there: only
	# that one is sent again.
	push 1
	same "${read[@]}"
	head -c 9000000 /dev/urandom >"$TEST_TMP/big.img"
	out=$("$R3SYNC" push "$TEST_TMP/big.img" --to "r3://$addr/src.img" --once 2>&1) && fail "a source larger than $uri was taken"
	echo "$out" | grep -q "No space left\|the target holds" || fail "no ENOSPC for a source larger than $uri: $out"
	same "${read[@]}"
	kill $serve_pid && wait $serve_pid 2>/dev/null || true
	echo "ok: pushes into $kind: copied, one chunk changed, rehashed after a restart, a larger source refused"
done
