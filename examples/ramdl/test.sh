#!/usr/bin/env bash
# The remote-RAM example as a test (part a): every page of the region B maps is what A's
# memory holds (run.sh checks it through r3map-region-demo). Part (b), swap, is vm_swap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed"; exit 77; }
command -v dbus-daemon >/dev/null || { echo "SKIP: dbus-daemon is not installed (r3mapd needs a bus)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (r3mapd on a private system bus)"; exit 77; }
/usr/bin/python3 - <<'PY' || { echo "SKIP: no userfaultfd here"; exit 77; }
import ctypes, os
fd = ctypes.CDLL(None, use_errno=True).syscall(323, os.O_CLOEXEC | 1)
raise SystemExit(0 if fd >= 0 else 1)
PY
"$here/run.sh" 32
