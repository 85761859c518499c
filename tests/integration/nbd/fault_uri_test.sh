#!/usr/bin/env bash
# fault+ in front of a backend, served by r3serve to a real NBD client: reads in the faulted
# range fail with EIO (the client sees the errno), everything else works, the server and the
# connection survive; the log names the faults and the seed.
source "$(dirname "$0")/../lib.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"
require nbdinfo
start_r3serve srv --socket "$TEST_TMP/s.sock" "fault+memory:16M?fault-ops=read&fault-eio-range=1M-2M&fault-seed=9"
/usr/bin/python3 - "$(unix_uri "$TEST_TMP/s.sock")" <<'PY'
import errno, nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
data = bytes(range(256)) * 256
h.pwrite(data, 1 << 20)  # writes are not faulted
assert h.pread(len(data), 0) == bytes(len(data))
try:
    h.pread(4096, (1 << 20) + 4096)
    sys.exit("a read inside the faulted range succeeded")
except nbd.Error as e:
    assert e.errno in (errno.EIO, "EIO"), f"wanted EIO, got {e.errno} {e.string}"
assert h.pread(4096, 2 << 20) == bytes(4096), "the byte after the range"
h.flush()
h.shutdown()
print("ok: EIO inside the range, data outside it, one connection throughout")
PY
nbdinfo --size "$(unix_uri "$TEST_TMP/s.sock")" | grep -qx 16777216 || fail "the server did not survive the faults"
grep -q "faults on reads: EIO in \[1048576, 2097152); seed 9" "$TEST_TMP/srv.log" || { cat "$TEST_TMP/srv.log" >&2; fail "the faults were not logged"; }
stop_r3serve srv
echo PASS
