#!/usr/bin/env bash
# A remote SQLite database opened in place: the database file stays on a remote
# (`r3serve --r3`), a managed export of r3mapd with no background pull caches what sqlite3
# touches, and nbdfuse shows the export as a file that Debian's sqlite3 opens. See README.md.
# r3mapd: the one on the system bus if it runs, else one started here on a private bus.
#   run.sh [ROWS]      default 1000000 (about 280 MiB); CHUNK=SIZE (64K), JSON=FILE
set -euo pipefail
rows=${1:-1000000}
chunk=${CHUNK:-64K}
here=$(cd "$(dirname "$0")" && pwd)
r3serve=${R3SERVE:-$here/../../build/cli/r3serve/r3serve}
sqlite=/usr/bin/sqlite3
r3ctl=${R3CTL:-$here/../../build/cli/r3ctl/r3ctl}
r3mapd=${R3MAPD:-$here/../../build/daemon/r3mapd}
for tool in "$r3serve" "$r3ctl" "$r3mapd"; do
	[ -x "$tool" ] || { echo "run.sh: no $tool (build first, or set R3SERVE, R3CTL and R3MAPD)" >&2; exit 2; }
done
source "$here/../lib.sh"
make_work sqlite
export_id=""
before_cleanup() {
	mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
	[ -z "$export_id" ] || "$r3ctl" unexport "$export_id" >/dev/null 2>&1 || true
}

# The remote database: ROWS rows of about 280 bytes, an index on sku.
"$sqlite" "$work/remote.db" "PRAGMA page_size=4096;
CREATE TABLE items(id INTEGER PRIMARY KEY, sku TEXT, qty INTEGER, payload BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO items SELECT i, printf('sku-%08d', (i * 7919) % 1000003), i % 97, randomblob(230) FROM n;
CREATE INDEX items_sku ON items(sku);"
db_bytes=$(stat -c %s "$work/remote.db")
# The rows looked up, and what the remote file itself answers for them.
skus=$(/usr/bin/python3 -c "import random; r = random.Random(7); print(' '.join('sku-%08d' % ((r.randrange(1, $rows + 1) * 7919) % 1000003) for _ in range(20)))")
query() {
	local q="" s
	for s in $skus; do q+="SELECT sku, id, qty FROM items WHERE sku = '$s';"; done
	"$sqlite" "$1" "$q"
}
expected=$(query "file:$work/remote.db?immutable=1" | sha256sum)

echo "database: $rows rows, $db_bytes bytes, on the remote; chunks of $chunk"
serve remote --r3 --listen 127.0.0.1:0 --name db "file:$work/remote.db"
if ! busctl --system status org.r3map.r3mapd >/dev/null 2>&1; then
	private_r3mapd "$work"
	export DBUS_SYSTEM_BUS_ADDRESS=$r3mapd_bus
fi
# No background pull: only what sqlite3 reads is fetched. A long push interval: what
# sqlite3 writes is pushed by `r3ctl sync` below, not by a timer.
"$r3ctl" --json export "r3://$(head -n1 "$work/remote.out")/db" --listen "unix:$work/managed.sock" \
	--managed --cache "$work/cache" --background no --push-interval 1h --chunk-size "$chunk" >"$work/export.json"
export_id=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$work/export.json")
mkdir "$work/mnt"
nbdfuse "$work/mnt/db.sqlite" --unix "$work/managed.sock" &
pids+=($!)
for _ in $(seq 200); do [ -e "$work/mnt/db.sqlite" ] && break; sleep 0.05; done
[ -e "$work/mnt/db.sqlite" ] || { echo "run.sh: nbdfuse did not mount" >&2; exit 1; }

# The mount holds just the database file: keep sqlite3's rollback journal in memory.
db="file:$work/mnt/db.sqlite"
t0=$(date +%s.%N)
got=$(query "$db" | sha256sum)
t1=$(date +%s.%N)
[ "$got" = "$expected" ] || { echo "run.sh: the queries through the mount answered differently" >&2; exit 1; }
first=${skus%% *}
"$sqlite" "$db" "PRAGMA journal_mode=MEMORY; UPDATE items SET qty = 4242 WHERE sku = '$first';" >/dev/null
# The commit is durable in the local cache; Managed1.Sync pushes it and replies when the
# remote has it.
"$r3ctl" sync --export "$export_id" 2>/dev/null
remote_qty=$("$sqlite" "file:$work/remote.db?immutable=1" "SELECT DISTINCT qty FROM items WHERE sku = '$first';")
[ "$remote_qty" = 4242 ] || { echo "run.sh: the remote has qty '$remote_qty' after r3ctl sync, not 4242" >&2; exit 1; }

"$r3ctl" --json status --export "$export_id" >"$work/status.json"
umount "$work/mnt"
"$r3ctl" unexport "$export_id" >/dev/null 2>&1
export_id=""
stop remote
pulled=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["managed"]["pulled_bytes"])' "$work/status.json")
pushed=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["managed"]["pushed_bytes"])' "$work/status.json")
remote_read=$(served remote "bytes read")
/usr/bin/python3 - "$db_bytes" "$pulled" "$pushed" "$remote_read" "$t0" "$t1" "${JSON:-}" <<'PY'
import json, sys
size, pulled, pushed, remote_read, t0, t1, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
print("| database | read by 20 indexed lookups at the remote | share of the file | pushed by one UPDATE | lookups took |")
print("|---|---|---|---|---|")
print(f"| {size / 2**20:.0f} MiB | {remote_read / 2**10:.0f} KiB | {remote_read / size * 100:.2f} % | {pushed / 2**10:.0f} KiB | {t1 - t0:.3f} s |")
if out:
    json.dump({"database_bytes": size, "pulled_bytes": pulled, "remote_bytes_read": remote_read,
               "pushed_bytes": pushed, "lookup_seconds": t1 - t0}, open(out, "w"), indent=1)
PY
