#!/usr/bin/env bash
# r3serve --managed refuses what it cannot serve safely, with a message, and exits non-zero:
# bad flag values (exit 2), a cache path that is not a directory, a cache in use by another
# r3serve, a corrupt or truncated journal, a remote of another size, a remote that came back
# empty (exit 1). --discard-local starts over. Needs no root; the tmpfs cases are in
# managed_cache_space_test.sh.
source "$(dirname "$0")/lib_managed.sh"
require nbdcopy cmp sha256sum
require_nbd_python

# expect_usage PATTERN ARGS...: r3serve exits 2 with PATTERN and the usage.
expect_usage() {
	local pattern=$1 status=0
	shift
	"$R3SERVE" "$@" >"$TEST_TMP/usage.out" 2>&1 || status=$?
	[ "$status" -eq 2 ] || { cat "$TEST_TMP/usage.out" >&2; fail "r3serve $* exited $status, wanted 2"; }
	grep -q -- "$pattern" "$TEST_TMP/usage.out" || { cat "$TEST_TMP/usage.out" >&2; fail "r3serve $*: no '$pattern'"; }
	grep -q "^usage: r3serve" "$TEST_TMP/usage.out" || fail "r3serve $*: no usage"
	echo "ok: exit 2: $(head -1 "$TEST_TMP/usage.out")"
}

echo "== bad flag values exit 2"
s=(--socket "$TEST_TMP/x.sock")
r=r3://127.0.0.1:1/disk
expect_usage "pull-workers: '0' is not a number from 1 to 256" --managed --pull-workers 0 "${s[@]}" "$r"
expect_usage "pull-workers" --managed --pull-workers 4k "${s[@]}" "$r"
expect_usage "chunk-size: .* is not a power of two" --managed --chunk-size 100K "${s[@]}" "$r"
expect_usage "push-interval: 1ms is outside 10ms..24h" --managed --push-interval 1ms "${s[@]}" "$r"
expect_usage "remote-timeout" --managed --remote-timeout soon "${s[@]}" "$r"
expect_usage "order: 'random' is not linear, reverse or hot:FILE" --managed --order random "${s[@]}" "$r"
expect_usage "pull-first" --managed --pull-first 200% "${s[@]}" "$r"
expect_usage "pull-rate" --managed --pull-rate fast "${s[@]}" "$r"
expect_usage "background: 'maybe' is not true or false" --managed --background maybe "${s[@]}" "$r"
expect_usage "go with --managed" --cache "$TEST_TMP/c" "${s[@]}" "$r"
expect_usage "go with --managed" --discard-local "${s[@]}" "$r"
expect_usage "exactly one BACKEND_URI" --managed "${s[@]}" "$r" two=memory:1M
expect_usage "read-only" --managed --read-only "${s[@]}" "$r"
[ ! -e "$TEST_TMP/c" ] || fail "a refused start created the cache directory"

port=$(free_port)
ruri=$(remote_uri "$port")
start_remote rem "$port" memory:64M
head -c 64M /dev/urandom >"$TEST_TMP/src.bin"
write_remote "$port" "$TEST_TMP/src.bin"
cache="$TEST_TMP/cache"
m=(--managed --socket "$TEST_TMP/m2.sock" --cache "$cache")

echo "== a hot list that cannot be read"
expect_refused hot "hot list $TEST_TMP/none: cannot open" --managed --socket "$TEST_TMP/m2.sock" \
	--order "hot:$TEST_TMP/none" "$ruri"

echo "== a cache path that is a file"
echo precious >"$TEST_TMP/file"
expect_refused notdir "cache $TEST_TMP/file: not writable: Not a directory" --managed --socket "$TEST_TMP/m2.sock" \
	--cache "$TEST_TMP/file" "$ruri"
[ "$(cat "$TEST_TMP/file")" = precious ] || fail "the file was changed"

echo "== a cache in use by another r3serve"
start_managed man "$ruri" --cache "$cache"
nbd_py "$(managed_uri man)" "
h.pread(1 << 20, 0)
h.pwrite(b'x' * (1 << 20), 10 << 20)
"
overlay "$TEST_TMP/src.bin" $((10 << 20)) <(head -c 1M /dev/zero | tr '\0' x)
expect_refused inuse "cache $cache: already in use by another mount" "${m[@]}" "$ruri"
kill -0 "$man_pid" || fail "the first r3serve died"
nbdcopy "$(managed_uri man)" "$TEST_TMP/served.bin"
cmp "$TEST_TMP/served.bin" "$TEST_TMP/src.bin" || fail "the first r3serve serves other data"
stop_r3serve man
echo "ok: the holder kept serving"

echo "== a corrupt journal"
journal="$cache/journal"
records=$((4096 + 256)) # header, then 2 bits for each of 1024 chunks
size=$(stat -c %s "$journal")
[ "$size" -gt $((records + 16)) ] || fail "the journal has no committed records to corrupt ($size bytes)"
cp "$journal" "$TEST_TMP/journal.good"
printf '\xff' | dd of="$journal" bs=1 seek=$((records + 5)) conv=notrunc status=none
expect_refused corrupt "journal $journal: corrupt record at byte $records, before the committed end" "${m[@]}" "$ruri"
grep -q "discard-local" "$TEST_TMP/corrupt.log" || fail "the refusal does not name --discard-local"
cmp -s "$journal" "$TEST_TMP/journal.good" && fail "the corrupt journal was replaced by the refused start"
echo "== a truncated journal"
truncate -s 100 "$journal"
expect_refused truncated "journal $journal: truncated: 100 bytes, shorter than its header" "${m[@]}" "$ruri"

echo "== --discard-local starts over"
start_managed man "$ruri" --cache "$cache" --discard-local
grep -q "resumed" "$TEST_TMP/man.log" && fail "--discard-local resumed"
nbdcopy "$(managed_uri man)" "$TEST_TMP/served.bin"
cmp "$TEST_TMP/served.bin" "$TEST_TMP/src.bin" || fail "after --discard-local the data differs from the remote"
stop_r3serve man

echo "== the remote restarted empty"
stop_r3serve rem
start_remote rem "$port" memory:64M
expect_refused empty "does not hold what the cache $cache pulled from it" "${m[@]}" "$ruri"
grep -q "restarted or replaced" "$TEST_TMP/empty.log" || fail "no 'restarted or replaced'"

echo "== a remote of another size"
stop_r3serve rem
start_remote rem "$port" memory:32M
expect_refused resized "its data file is 67108864 bytes, the remote region 33554432" "${m[@]}" "$ruri"
stop_r3serve rem
echo PASS
