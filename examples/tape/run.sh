#!/usr/bin/env bash
# The tape-like backend (tapisk): a remote whose seeks are expensive and whose sequential
# reads are cheap, read at random through a direct export and through a managed one that
# streams the tape once, in order, into a local cache. See README.md.
#   run.sh [SIZE_MIB] [READS]      defaults 256 and 200; SEEK=20ms, JSON=FILE
set -euo pipefail
size_mib=${1:-256}
reads=${2:-200}
seek=${SEEK:-20ms}
here=$(cd "$(dirname "$0")" && pwd)
r3serve=${R3SERVE:-$here/../../build/cli/r3serve/r3serve}
[ -x "$r3serve" ] || { echo "run.sh: no r3serve at $r3serve (build first, or set R3SERVE)" >&2; exit 2; }
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "run.sh: needs python3-libnbd" >&2; exit 2; }
source "$here/../lib.sh"
make_work tape

seeks() {
	sed -n 's/.*fault stage closed: .* \([0-9][0-9]*\) seeks.*/\1/p' "$work/$1.log" | tail -n1
}
now() { date +%s.%N; }

# reads URI: READS random 4 KiB reads (the same offsets every time): seconds and a hash.
random_reads() {
	/usr/bin/python3 - "$1" "$reads" "$((size_mib << 20))" <<'PY'
import hashlib, nbd, random, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
n, size = int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
digest = hashlib.sha256()
t = time.perf_counter()
for _ in range(n):
    digest.update(h.pread(4096, rng.randrange(size // 4096) * 4096))
print(f"{time.perf_counter() - t:.3f} {digest.hexdigest()}")
PY
}
head -c "$((size_mib << 20))" /dev/urandom >"$work/tape.img"
# The same offsets read from the image itself: what both exports must return.
expected=$(/usr/bin/python3 - "$work/tape.img" "$reads" "$((size_mib << 20))" <<'PY'
import hashlib, random, sys
f = open(sys.argv[1], "rb")
n, size = int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
digest = hashlib.sha256()
for _ in range(n):
    f.seek(rng.randrange(size // 4096) * 4096)
    digest.update(f.read(4096))
print(digest.hexdigest())
PY
)
tape="fault+file:$work/tape.img?fault-seek=$seek"

echo "tape: $size_mib MiB, every seek costs $seek; $reads random 4 KiB reads"
# Direct: every read goes to the tape and seeks.
serve tape --r3 --listen 127.0.0.1:0 --name tape "$tape"
remote="r3://$(head -n1 "$work/tape.out")/tape"
serve direct --socket "$work/direct.sock" "$remote"
read -r direct_s direct_hash < <(random_reads "nbd+unix:///?socket=$work/direct.sock")
stop direct
stop tape
direct_seeks=$(seeks tape)

# Managed: one worker streams the tape in order into the cache (--pull-first 100%: the
# export is served once all of it is local), then the same reads are local.
serve tape --r3 --listen 127.0.0.1:0 --name tape "$tape"
remote="r3://$(head -n1 "$work/tape.out")/tape"
t0=$(now)
serve managed --managed --cache "$work/cache" --order linear --pull-workers 1 --pull-first 100% \
	--socket "$work/managed.sock" "$remote"
t1=$(now)
read -r managed_s managed_hash < <(random_reads "nbd+unix:///?socket=$work/managed.sock")
stop managed
stop tape
managed_seeks=$(seeks tape)
pull_s=$(/usr/bin/python3 -c "print(f'{$t1 - $t0:.3f}')")

[ "$direct_hash" = "$expected" ] || { echo "run.sh: the direct export returned other bytes" >&2; exit 1; }
[ "$managed_hash" = "$expected" ] || { echo "run.sh: the managed export returned other bytes" >&2; exit 1; }
/usr/bin/python3 - "$reads" "$direct_s" "$direct_seeks" "$managed_s" "$managed_seeks" "$pull_s" "${JSON:-}" <<'PY'
import json, sys
reads, ds, dk, ms, mk, pull, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
print(f"| mount | seeks at the tape | {reads} random reads, s | ms per read |")
print("|---|---|---|---|")
print(f"| direct | {dk} | {ds:.2f} | {ds / reads * 1e3:.2f} |")
print(f"| managed, after pulling the tape in order ({pull:.2f} s) | {mk} | {ms:.3f} | {ms / reads * 1e3:.3f} |")
print(f"speed-up of the random reads: {ds / ms:.0f}x; the managed export's tape seeked {mk} times")
if out:
    json.dump({"reads": reads, "direct": {"seconds": ds, "seeks": dk},
               "managed": {"seconds": ms, "seeks": mk, "pull_seconds": pull}}, open(out, "w"), indent=1)
PY
