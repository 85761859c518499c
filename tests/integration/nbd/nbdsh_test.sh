#!/usr/bin/env bash
source "$(dirname "$0")/../lib.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"
start_r3serve srv --socket "$TEST_TMP/s.sock" memory:64M two=memory:32M
start_r3serve ro --socket "$TEST_TMP/ro.sock" --read-only memory:16M
/usr/bin/python3 "$(dirname "$0")/nbdsh_test.py" "$TEST_TMP/s.sock" "$TEST_TMP/ro.sock"
stop_r3serve srv
stop_r3serve ro
