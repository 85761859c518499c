#!/usr/bin/env bash
# Remote RAM (ram-dl), part (a): host A's memory, exported with `r3serve --r3 memory:SIZE`,
# mapped by host B as plain memory: r3mapd serves the region's page faults (userfaultfd)
# from A, and r3map-region-demo (examples/region) checks every page through the C ABI.
# Part (b), remote RAM as swap, is the vm suite's vm_swap test (see README.md).
# r3mapd: the one on the system bus if it runs, else one started here on a private bus.
#   run.sh [SIZE_MIB]      default 64
set -euo pipefail
size_mib=${1:-64}
here=$(cd "$(dirname "$0")" && pwd)
r3serve=${R3SERVE:-$here/../../build/cli/r3serve/r3serve}
r3ctl=${R3CTL:-$here/../../build/cli/r3ctl/r3ctl}
r3mapd=${R3MAPD:-$here/../../build/daemon/r3mapd}
demo=${R3MAP_REGION_DEMO:-$here/../../build/examples/region/r3map-region-demo}
for tool in "$r3serve" "$r3ctl" "$r3mapd" "$demo"; do
	[ -x "$tool" ] || { echo "run.sh: no $tool (build first, or set R3SERVE, R3CTL, R3MAPD, R3MAP_REGION_DEMO)" >&2; exit 2; }
done
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "run.sh: needs python3-libnbd" >&2; exit 2; }
source "$here/../lib.sh"
make_work ramdl
# Host A: SIZE MiB of its RAM as an r3:// export.
serve ram --r3 --listen 127.0.0.1:0 --name ram "memory:${size_mib}M"
remote="r3://$(head -n1 "$work/ram.out")/ram"
# Something in A's memory to find: page N holds N+1 (8 bytes) then 0xa5, written through
# an NBD export of it.
serve fill --socket "$work/fill.sock" "$remote"
/usr/bin/python3 - "nbd+unix:///?socket=$work/fill.sock" "$size_mib" <<'PY'
import nbd, struct, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for mib in range(int(sys.argv[2])):
    h.pwrite(b"".join(struct.pack("<Q", mib * 256 + p + 1) + b"\xa5" * 4088 for p in range(256)), mib << 20)
h.flush()
PY
stop fill

# Host B: r3mapd serves the region; its socket is the app's way in.
sock=/run/r3map/regions.sock
if ! busctl --system status org.r3map.r3mapd >/dev/null 2>&1; then
	private_r3mapd "$work"
	export DBUS_SYSTEM_BUS_ADDRESS=$r3mapd_bus
	sock=$work/regions.sock
fi
t0=$(date +%s.%N)
out=$("$r3ctl" map "$remote" --size "${size_mib}M" --socket "$sock" -- "$demo" pattern)
t1=$(date +%s.%N)
out=$(tail -n1 <<<"$out")
echo "B mapped $remote: $out"
[ "$out" = "OK $((size_mib * 256)) pages" ] || { cat "$work/r3mapd.log" >&2 2>/dev/null; echo "run.sh: the region is not A's memory" >&2; exit 1; }
stop ram
read_bytes=$(served ram "bytes read")
/usr/bin/python3 -c "import sys; s, r, t = int(sys.argv[1]) << 20, int(sys.argv[2]), float(sys.argv[3]); print(f'read from A: {r >> 20} MiB of {s >> 20} MiB in {t:.2f} s, mapped and checked')" "$size_mib" "$read_bytes" "$(/usr/bin/python3 -c "print($t1 - $t0)")"
