#!/usr/bin/env bash
# Memory regions served by r3mapd: an app (r3map-region-demo through r3ctl map and the C
# ABI) maps a region, the daemon serves its faults from the backend, and Region1 shows it.
# Unprivileged apps in the access group may; others may not. A kill -9 of r3mapd gives the
# app SIGBUS, not zeros and not a hang; an app that dies frees its region. Bad requests on
# the region socket get a clear error and the daemon goes on.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (a private bus, setpriv, other users)"
nobody=65534
other=1
group=4242
getent passwd $nobody >/dev/null && getent passwd $other >/dev/null || skip "users $nobody and $other are needed"
getent group $group >/dev/null && skip "gid $group exists here; this test wants its own"
python3 - <<'PY' || skip "no userfaultfd here"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(323, os.O_CLOEXEC | 1)
raise SystemExit(0 if fd >= 0 else 1)
PY

sock=$TEST_TMP/regions.sock
echo "{\"access_group\": $group, \"region_socket\": \"$sock\"}" >"$TEST_TMP/r3mapd.json"
with_group_members "r3map-it:x:$group:$(getent passwd $nobody | cut -d: -f1)"
# A page-numbered pattern: page N holds N+1 (8 bytes) then 0xa5.
python3 - "$TEST_TMP/pattern.img" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as f:
    for page in range(16384):  # 64 MiB
        f.write(struct.pack("<Q", page + 1) + b"\xa5" * 4088)
PY
chmod 644 "$TEST_TMP/pattern.img"

demo=$R3MAP_REGION_DEMO
regions() { busctl --system call org.r3map.r3mapd /org/r3map org.freedesktop.DBus.ObjectManager GetManagedObjects \
	| grep -o '/org/r3map/regions/[0-9]*' | sort -u; }

start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
[ -S "$sock" ] || { cat "$TEST_TMP/d.log"; fail "no region socket"; }

echo "== root maps 64 MiB of a file: every page is the backend's, writes stick, DONTNEED re-reads"
expect_r3ctl 0 map "file:$TEST_TMP/pattern.img" --size 64M --socket "$sock" -- "$demo" pattern
grep -q "^OK 16384 pages" "$TEST_TMP/out" || fail "pattern: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
for i in $(seq 50); do [ -z "$(regions)" ] && break; sleep 0.1; done
[ -z "$(regions)" ] || fail "the region outlived its app's unmap: $(regions)"

echo "== tracked writes (auto: wp-async on this kernel, then wp-sync forced) reach the file on Sync"
for mode in auto wp-sync; do
	cp "$TEST_TMP/pattern.img" "$TEST_TMP/tracked.img"
	R3MAP_REGION_TRACKING=$mode expect_r3ctl 0 map "file:$TEST_TMP/tracked.img" --size 64M --socket "$sock" \
		-- "$demo" pattern
	grep -q "^OK 16384 pages" "$TEST_TMP/out" || fail "tracked $mode: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
	# The demo wrote 0x11 over page 0 and 0x22 over page 1, then discarded page 1 (DONTNEED).
	python3 - "$TEST_TMP/tracked.img" <<'PY' || fail "tracked $mode: the file does not hold the app's writes"
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read(3 * 4096)
page = lambda n: data[n * 4096:(n + 1) * 4096]
assert page(0) == b"\x11" * 4096, page(0)[:16]
for n in (1, 2):
    assert page(n) == struct.pack("<Q", n + 1) + b"\xa5" * 4088, (n, page(n)[:16])
PY
done
want=wp-async
python3 -c 'import platform,sys; v=tuple(map(int,platform.release().split(".")[:2])); sys.exit(v < (6, 7))' || want=wp-sync
grep -q "tracking $want" "$TEST_TMP/d.log" || fail "no region with tracking $want in the log"
grep -q "tracking wp-sync" "$TEST_TMP/d.log" || fail "the forced wp-sync region is not in the log"

echo "== while mapped, Region1 and r3ctl ls/status show it"
coproc HOLD { R3MAP_REGION_URI="file:$TEST_TMP/pattern.img" R3MAP_REGION_SIZE=$((16 << 20)) \
	R3MAP_REGION_SOCKET=$sock "$demo" hold; }
hold=$HOLD_PID # bash unsets HOLD_PID once the coproc is reaped
read -r -t 20 line <&"${HOLD[0]}" || fail "hold: no output"
[[ $line == "mapped "* ]] || fail "hold: $line"
rid=${line#mapped }
path=/org/r3map/regions/$rid
busctl --system introspect --xml-interface org.r3map.r3mapd "$path" >"$TEST_TMP/region.xml"
python3 "$(dirname "$0")/compare_introspection.py" "$R3MAP_DBUS_DIR/org.r3map.Region1.xml" "$TEST_TMP/region.xml" \
	|| fail "Region1 differs from the XML"
busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Region1 Size | grep -qx "t $((16 << 20))" \
	|| fail "Region1.Size"
busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Region1 TrackingMode | grep -qx 's "none"' \
	|| fail "Region1.TrackingMode"
busctl --system get-property org.r3map.r3mapd "$path" org.r3map.Region1 Backend | grep -qF "pattern.img" \
	|| fail "Region1.Backend"
expect_r3ctl 0 ls
grep -q "^$rid .* none .*pattern.img" "$TEST_TMP/out" || fail "ls: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 --json ls --regions
[ "$(json_field 'j[0]["size"]')" = $((16 << 20)) ] || fail "ls --regions: $(cat "$TEST_TMP/out")"
expect_r3ctl 0 status --region "$rid"
grep -q "tracking *none" "$TEST_TMP/out" || fail "status: $(cat "$TEST_TMP/out")"
busctl --system call org.r3map.r3mapd "$path" org.r3map.Region1 Sync || fail "Sync"

echo "== someone else's region: nobody may neither Sync nor Unmap root's (NotPermitted)"
setpriv --reuid=$nobody --regid=$nobody --clear-groups busctl --system call org.r3map.r3mapd "$path" \
	org.r3map.Region1 Unmap >"$TEST_TMP/reply" 2>&1 && fail "nobody unmapped root's region"
grep -q "belongs to uid 0" "$TEST_TMP/reply" || fail "reply: $(cat "$TEST_TMP/reply")"

echo "== Unmap on D-Bus frees it; the app is left with SIGBUS for what it did not touch, never zeros"
busctl --system call org.r3map.r3mapd "$path" org.r3map.Region1 Unmap || fail "Unmap"
[ -z "$(regions)" ] || fail "Unmap left $(regions)"
exec {HOLD[1]}>&-
wait "$hold" 2>/dev/null || true
daemon_alive

echo "== r3ctl map --tracking: a bad mode is a usage error; each mode reaches the app, Region1.TrackingMode shows it"
expect_r3ctl 2 map memory:1M --size 1M --tracking sometimes --socket "$sock" -- "$demo" zeros
grep -q "bad --tracking 'sometimes'" "$TEST_TMP/err" || fail "--tracking sometimes: $(cat "$TEST_TMP/err")"
for mode in wp-sync none; do
	coproc HOLD { "$R3CTL" map "file:$TEST_TMP/pattern.img" --size 4M --tracking $mode --socket "$sock" \
		-- "$demo" hold; }
	hold=$HOLD_PID
	read -r -t 20 line <&"${HOLD[0]}" || fail "--tracking $mode: no output"
	rid=${line#mapped }
	busctl --system get-property org.r3map.r3mapd "/org/r3map/regions/$rid" org.r3map.Region1 TrackingMode \
		| grep -qx "s \"$mode\"" || fail "Region1.TrackingMode after --tracking $mode"
	exec {HOLD[1]}>&-
	wait "$hold" 2>/dev/null || true
done

echo "== a tracked region (r3ctl map --tracking auto) shows its mode and dirty bytes on Region1 and in r3ctl ls"
coproc HOLD { "$R3CTL" map "file:$TEST_TMP/pattern.img" --size 4M --tracking auto --socket "$sock" -- "$demo" hold; }
hold=$HOLD_PID
read -r -t 20 line <&"${HOLD[0]}" || fail "tracked hold: no output"
rid=${line#mapped }
busctl --system get-property org.r3map.r3mapd "/org/r3map/regions/$rid" org.r3map.Region1 TrackingMode \
	| grep -qx "s \"$want\"" || fail "Region1.TrackingMode of a tracked region is not $want"
busctl --system get-property org.r3map.r3mapd "/org/r3map/regions/$rid" org.r3map.Region1 DirtyBytes \
	| grep -qx "t 0" || fail "Region1.DirtyBytes of an untouched region"
expect_r3ctl 0 ls --regions
grep -q "^$rid .* $want " "$TEST_TMP/out" || fail "ls --regions: $(cat "$TEST_TMP/out")"
busctl --system call org.r3map.r3mapd "/org/r3map/regions/$rid" org.r3map.Region1 Sync || fail "Sync of a tracked region"
exec {HOLD[1]}>&-
wait "$hold" 2>/dev/null || true

echo "== export:ID: a region through an export's pipeline; the app's tracked writes reach the export's backend"
cp "$TEST_TMP/pattern.img" "$TEST_TMP/shared.img"
expect_r3ctl 0 --json export "file:$TEST_TMP/shared.img" --listen 127.0.0.1:0 --name shared
eid=$(json_field 'j["id"]')
expect_r3ctl 0 map "export:$eid" --size 64M --tracking auto --socket "$sock" -- "$demo" pattern
grep -q "^OK 16384 pages" "$TEST_TMP/out" || fail "export:$eid: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
python3 - "$TEST_TMP/shared.img" <<'PY' || fail "export:$eid: the export's file does not hold the app's writes"
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read(2 * 4096)
assert data[:4096] == b"\x11" * 4096, data[:16]
assert data[4096:] == struct.pack("<Q", 2) + b"\xa5" * 4088, data[4096:4112]
PY
grep -q "region [0-9]*: $((64 << 20)) bytes of export:$eid " "$TEST_TMP/d.log" || fail "no region of export:$eid in the log"

echo "== export:ID stays while a region maps it (Busy), and stops once the region is freed"
coproc HOLD { "$R3CTL" map "export:$eid" --size 4M --socket "$sock" -- "$demo" hold; }
hold=$HOLD_PID
read -r -t 20 line <&"${HOLD[0]}" || fail "export hold: no output"
[[ $line == "mapped "* ]] || fail "export hold: $line"
rid=${line#mapped }
busctl --system get-property org.r3map.r3mapd "/org/r3map/regions/$rid" org.r3map.Region1 Backend \
	| grep -qx "s \"export:$eid\"" || fail "Region1.Backend of an export's region"
expect_r3ctl 1 --json unexport "$eid"
[ "$(json_error)" = org.r3map.Error.Busy ] && grep -q "lent to 1 memory region or migration" "$TEST_TMP/out" \
	|| fail "unexport under a region: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
exec {HOLD[1]}>&-
wait "$hold" 2>/dev/null || true
for i in $(seq 50); do [ -z "$(regions)" ] && break; sleep 0.1; done
expect_r3ctl 0 unexport "$eid"

echo "== export:ID of a managed export: the region's writes go to its cache, and its push takes them to the remote"
cp "$TEST_TMP/pattern.img" "$TEST_TMP/remote.img"
expect_r3ctl 0 --json export "file:$TEST_TMP/remote.img" --listen 127.0.0.1:0 --name cached --managed
mid=$(json_field 'j["id"]')
expect_r3ctl 0 map "export:$mid" --size 64M --tracking wp-sync --socket "$sock" -- "$demo" pattern
grep -q "^OK 16384 pages" "$TEST_TMP/out" || fail "export:$mid: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_r3ctl 0 unexport "$mid"
python3 - "$TEST_TMP/remote.img" <<'PY' || fail "export:$mid: the remote does not hold the app's writes after the push"
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read(2 * 4096)
assert data[:4096] == b"\x11" * 4096, data[:16]
assert data[4096:] == struct.pack("<Q", 2) + b"\xa5" * 4088, data[4096:4112]
PY

echo "== mount:ID and export:ID that do not fit: clear errors, nothing is mapped"
expect_r3ctl 0 --json export "file:$TEST_TMP/pattern.img" --listen 127.0.0.1:0 --name ro --read-only
ro=$(json_field 'j["id"]')
map_refused() { # WANT URI SIZE [--tracking MODE]
	local want=$1
	shift
	expect_r3ctl 1 map "$1" --size "$2" "${@:3}" --socket "$sock" -- "$demo" zeros
	grep -qF -- "$want" "$TEST_TMP/err" || fail "map $*: wanted '$want': $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
}
map_refused "NotFound: cannot map export:999: no export '999'" export:999 1M
map_refused "NotFound: cannot map mount:42: no mount '42'" mount:42 1M
map_refused "BadUri: 'export:first': expected export:ID" export:first 1M
map_refused "InvalidArgument: a region of $((128 << 20)) bytes does not fit export $ro: it has $((64 << 20)) bytes" \
	"export:$ro" 128M
map_refused "ReadOnly: export $ro is read-only: a tracked region writes back to it" "export:$ro" 1M --tracking wp-sync
[ -z "$(regions)" ] || fail "a refused map left $(regions)"
expect_r3ctl 0 map "export:$ro" --size 64M --socket "$sock" -- "$demo" pattern
grep -q "^OK 16384 pages" "$TEST_TMP/out" || fail "export:$ro untracked: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_r3ctl 0 unexport "$ro"
daemon_alive

echo "== an unprivileged member of the access group maps a region from memory"
expect_r3ctl 0 --as $nobody map memory:32M --size 32M --socket "$sock" -- "$demo" zeros
grep -q "^OK 8192 pages" "$TEST_TMP/out" || fail "nobody: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
grep -q "uid $nobody" "$TEST_TMP/d.log" || fail "the daemon did not log nobody's region"

echo "== nobody maps the pattern file through an r3:// export of it: the daemon is client and server"
expect_r3ctl 0 --json export "file:$TEST_TMP/pattern.img" --listen 127.0.0.1:0 --protocol r3 --name pattern
r3=$(json_field 'j["listen"]')
expect_r3ctl 0 --as $nobody map "r3://$r3/pattern" --size 64M --socket "$sock" -- "$demo" pattern
grep -q "^OK 16384 pages" "$TEST_TMP/out" || fail "nobody over r3://: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"

echo "== a user outside the group is refused, and so is a local file for a non-root caller"
expect_r3ctl 1 --as $other map memory:1M --size 1M --socket "$sock" -- "$demo" zeros
grep -q "NotPermitted" "$TEST_TMP/err" || fail "other: $(cat "$TEST_TMP/out" "$TEST_TMP/err")"
expect_r3ctl 1 --as $nobody map "file:$TEST_TMP/pattern.img" --size 1M --socket "$sock" -- "$demo" pattern
grep -q "NotPermitted\|SchemeNotAllowed" "$TEST_TMP/err" || fail "nobody file: $(cat "$TEST_TMP/err")"

echo "== bad requests get a clear error and the daemon goes on"
python3 - "$sock" <<'PY' || fail "bad requests"
import ctypes, os, socket, struct, sys, mmap
path = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def uffd():
    fd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK | 1)
    assert fd >= 0, ctypes.get_errno()
    return fd
def header(t, body):
    return struct.pack("<IHHI", 0x47523352, 1, t, len(body)) + body
def mapreq(base, size, fd, source=b"memory:1M", flags=0):
    return header(1, struct.pack("<QQQiIII", base, size, 0, fd, flags, 0, len(source)) + source)
def ask(data, fds=()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    if fds:
        socket.send_fds(s, [data], list(fds))
    else:
        s.send(data)
    s.settimeout(10)
    r = s.recv(70000)
    s.close()
    status, idlen, msglen = struct.unpack_from("<iII", r, 12)
    return status, r[24 + idlen:24 + idlen + msglen].decode()
page = mmap.mmap(-1, 1 << 20)
base = ctypes.addressof(ctypes.c_char.from_buffer(page))
r, w = os.pipe()
cases = [
    ("oversized", b"x" * 9000, (), "longer than"),
    ("bad magic", header(1, b"")[:-1] + b"\0" + b"\0" * 4, (), "malformed"),
    ("truncated", header(1, struct.pack("<QQ", base, 4096)), (), "truncated"),
    ("no fd", mapreq(base, 1 << 20, 3), (), "no userfaultfd"),
    ("not a uffd", mapreq(base, 1 << 20, w), (w,), "not a userfaultfd"),
    ("size 0", mapreq(base, 0, 5), (uffd(),), "not a positive multiple"),
    ("misaligned", mapreq(base + 1, 1 << 20, 5), (uffd(),), "not page aligned"),
    ("huge", mapreq(base, 1 << 50, 5), (uffd(),), "not a positive multiple"),
    ("unknown flags", mapreq(base, 1 << 20, 5, flags=8), (uffd(),), "unknown flags"),
]
fd = uffd()
cases += [
    ("someone else's fd", mapreq(base, 1 << 20, 0), (fd,), "is not fd 0 of the caller"),
    ("unregistered mapping", mapreq(base, 1 << 20, fd), (fd,), "not registered with a userfaultfd"),
]
# A real registration, served once; the same range again overlaps it.
import fcntl
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
real = uffd()
fcntl.ioctl(real, 0xc018aa3f, bytearray(struct.pack("<QQQ", 0xAA, 0, 0)))  # UFFDIO_API
addr = libc.mmap(None, 1 << 20, 3, 0x22, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
fcntl.ioctl(real, 0xc020aa00, bytearray(struct.pack("<QQQQ", addr, 1 << 20, 1, 0)))  # REGISTER MISSING
held = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
held.connect(path)
socket.send_fds(held, [mapreq(addr, 1 << 20, real)], [real])
status, = struct.unpack_from("<i", held.recv(70000), 12)
assert status == 0, f"a valid request was refused: {status}"
cases.append(("overlap", mapreq(addr, 1 << 20, real), (real,), "overlaps region"))
bad = 0
for name, data, fds, want in cases:
    status, msg = ask(data, fds)
    ok = status != 0 and want in msg
    print(f"{name}: {status} {msg}")
    bad += not ok
sys.exit(1 if bad else 0)
PY
daemon_alive
expect_r3ctl 0 map memory:4M --size 4M --socket "$sock" -- "$demo" zeros

echo "== an app killed -9 frees its region"
coproc HOLD { R3MAP_REGION_URI=memory:4M R3MAP_REGION_SIZE=$((4 << 20)) R3MAP_REGION_SOCKET=$sock "$demo" hold; }
hold=$HOLD_PID
read -r -t 20 line <&"${HOLD[0]}" || fail "hold: no output"
[ -n "$(regions)" ] || fail "no region while held"
kill -9 "$hold"
wait "$hold" 2>/dev/null || true
for i in $(seq 50); do [ -z "$(regions)" ] && break; sleep 0.1; done
[ -z "$(regions)" ] || fail "the dead app's region stayed: $(regions)"

echo "== a failing backend: the fault retries up to the remote timeout (1 s here), then SIGBUS, never zeros"
start=$(date +%s%N)
rc=0
R3MAP_REGION_BACKGROUND=0 R3MAP_REGION_REMOTE_TIMEOUT_MS=1000 R3MAP_REGION_SOCKET=$sock \
	R3MAP_REGION_URI="fault+file:$TEST_TMP/pattern.img?fault-ops=read&fault-eio-range=1M-2M" \
	R3MAP_REGION_SIZE=$((4 << 20)) timeout 30 "$demo" slow 250 >"$TEST_TMP/fail.out" 2>&1 || rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
grep -q ZEROS "$TEST_TMP/fail.out" && fail "the app read zeros: $(tail -3 "$TEST_TMP/fail.out")"
[ $rc -eq 42 ] && grep -q "^SIGBUS at page 256$" "$TEST_TMP/fail.out" \
	|| fail "wanted SIGBUS at page 256 (42), got $rc: $(tail -3 "$TEST_TMP/fail.out")"
# The puller gives up once its next backoff would pass the timeout: at ~620 ms of 1000.
[ $took -ge 500 ] || fail "SIGBUS after $took ms: the fault did not wait for the backend"
echo "SIGBUS $took ms after the start"
daemon_alive

echo "== kill -9 of r3mapd: the app gets SIGBUS within seconds, never zeros, never a hang"
R3MAP_REGION_BACKGROUND=0 R3MAP_REGION_URI="file:$TEST_TMP/pattern.img" R3MAP_REGION_SIZE=$((64 << 20)) \
	R3MAP_REGION_SOCKET=$sock "$demo" slow >"$TEST_TMP/slow.out" 2>&1 &
slow=$!
track $slow
for i in $(seq 100); do grep -q "^touched 10$" "$TEST_TMP/slow.out" && break; sleep 0.1; done
grep -q "^touched 10$" "$TEST_TMP/slow.out" || fail "slow: $(cat "$TEST_TMP/slow.out")"
kill -9 "$d_pid"
start=$(date +%s)
for i in $(seq 100); do kill -0 $slow 2>/dev/null || break; sleep 0.1; done
kill -0 $slow 2>/dev/null && fail "the app still runs 10 s after r3mapd died: $(tail -3 "$TEST_TMP/slow.out")"
status=0
wait $slow || status=$?
grep -q ZEROS "$TEST_TMP/slow.out" && fail "the app read zeros: $(tail -3 "$TEST_TMP/slow.out")"
[ $status -eq 42 ] && grep -q "^SIGBUS at page" "$TEST_TMP/slow.out" \
	|| fail "wanted SIGBUS (42), got $status: $(tail -3 "$TEST_TMP/slow.out")"
echo "SIGBUS $(( $(date +%s) - start )) s after the kill: $(grep "^SIGBUS at" "$TEST_TMP/slow.out")"
echo PASS
