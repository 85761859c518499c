#!/usr/bin/env bash
# The tape example as a test: both exports return the image's bytes (run.sh checks the
# hashes), every random read through the direct export costs the tape a seek, and the
# managed export's in-order pull costs it almost none. Timings are printed, not checked.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed"; exit 77; }
json=$(mktemp /tmp/r3tape-json.XXXXXX)
trap 'rm -f "$json"' EXIT
SEEK=5ms JSON="$json" "$here/run.sh" 32 100
/usr/bin/python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
reads, direct, managed = r["reads"], r["direct"]["seeks"], r["managed"]["seeks"]
# A random read may, rarely, start where the previous one ended.
assert direct >= reads * 9 // 10, f"direct: {direct} seeks for {reads} random reads"
assert managed <= 2, f"managed: the in-order pull seeked {managed} times"
print(f"ok: direct {direct} seeks, managed {managed}")
PY
