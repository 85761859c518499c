#!/usr/bin/env bash
# The SQLite example as a test: 20 indexed lookups through the mount answer exactly what the
# remote file answers, an UPDATE reaches the remote file after r3ctl sync (run.sh checks
# both), and the lookups fetch a small fraction of the database. Timings are not checked.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ -x /usr/bin/sqlite3 ] || { echo "SKIP: sqlite3 is not installed"; exit 77; }
command -v nbdfuse >/dev/null || { echo "SKIP: nbdfuse (libnbd-bin) is not installed"; exit 77; }
command -v dbus-daemon >/dev/null || { echo "SKIP: dbus-daemon is not installed (r3mapd needs a bus)"; exit 77; }
[ -c /dev/fuse ] && [ "$(id -u)" = 0 ] || { echo "SKIP: needs root and /dev/fuse to mount with nbdfuse"; exit 77; }
json=$(mktemp /tmp/r3sqlite-json.XXXXXX)
trap 'rm -f "$json"' EXIT
# 300000 rows: about 85 MiB, enough for a three-level index; CHUNK=4K as in the README's table.
CHUNK=4K JSON="$json" "$here/run.sh" 300000
/usr/bin/python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
size, read = r["database_bytes"], r["remote_bytes_read"]
assert read > 0, "nothing was read from the remote: the mount did not reach it"
assert read <= size // 50, f"{read} of {size} bytes were pulled for 20 lookups (more than 2 %)"
assert r["pushed_bytes"] > 0, "the UPDATE pushed nothing"
print(f"ok: {read} of {size} bytes pulled ({read / size * 100:.2f} %), {r['pushed_bytes']} pushed")
PY
