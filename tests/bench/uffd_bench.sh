#!/usr/bin/env bash
# Memory regions over a userfaultfd (uffd_bench): a 1 GiB region from a memory backend, and
# from an r3:// export on loopback (r3serve --r3), touched sequentially and at random with
# adaptive batching, fixed 4 KiB (the userfaultfd-go design) and fixed 2 MiB, next to a
# plain copy of the same bytes from the backend, and the dirty-tracking costs (PAGEMAP_SCAN
# vs synchronous write protection). Prints the tables and writes JSON.
# Not a pass/fail test: it fails only if a tool fails or a byte is wrong.
source "$(dirname "$0")/../integration/lib.sh"
require python3
out=${BENCH_OUT:-$PWD/uffd_bench.json}
size=${BENCH_SIZE:-1G}

"$UFFD_BENCH" --uri "memory:$size" --size "$size" --json "$TEST_TMP/memory.json" || fail "uffd_bench on memory failed"

start_r3serve r3 --r3 --listen 127.0.0.1:0 --name disk --log-level warn "memory:$size"
"$UFFD_BENCH" --uri "r3://$(tcp_address r3)/disk" --size "$size" --json "$TEST_TMP/r3.json" ||
	fail "uffd_bench on r3:// failed"

python3 - "$TEST_TMP/memory.json" "$TEST_TMP/r3.json" "$out" <<'PY'
import json, sys, datetime
runs = {"memory": json.load(open(sys.argv[1])), "r3-loopback": json.load(open(sys.argv[2]))}
json.dump({"benchmark": "uffd", "date": datetime.datetime.utcnow().isoformat() + "Z", "runs": runs},
          open(sys.argv[3], "w"), indent=2)
print(f"JSON: {sys.argv[3]}")
PY
