#!/usr/bin/env bash
# The app-state example as a test: run.sh checks that B's r3todo lists every item (those
# added before the pull and during its pre-copy rounds, and which are done), that A refuses
# changes once the finalize hook paused it, and that B goes on. It runs twice: between two
# r3mapd (r3ctl migrate) and between two r3migrate processes. Timings are printed, not checked.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v nbdfuse >/dev/null || { echo "SKIP: nbdfuse (libnbd-bin) is not installed"; exit 77; }
[ -c /dev/fuse ] && [ "$(id -u)" = 0 ] || { echo "SKIP: needs root and /dev/fuse to mount with nbdfuse"; exit 77; }
if [ -n "${R3MAPD:-}" ]; then
	echo "== daemon A to daemon B (r3ctl migrate)"
	"$here/run.sh" 20
else
	echo "== (no r3mapd in this build: the daemon run is left out)"
fi
echo "== r3migrate to r3migrate"
"$here/run.sh" --tools 20
