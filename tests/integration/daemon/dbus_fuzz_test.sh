#!/usr/bin/env bash
# Random argument values to every r3mapd method on a real bus (dbus_fuzz.py) from three
# callers: root, nobody in the access group (permitted, unprivileged) and a uid outside it.
# The bus lets every call through (open-policy.conf), so the daemon's own checks answer.
# Each call gets a reply or a clean error, and the daemon stays up and answering.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/bus_lib.sh"
/usr/bin/python3 -c 'import dbus' 2>/dev/null || skip "python3-dbus is not installed"

nobody=65534 group=4242 stranger=1
getent passwd $nobody >/dev/null || skip "user $nobody is needed"
# The bus authenticates only users it can look up: the stranger is a system user (daemon).
getent passwd $stranger >/dev/null || skip "user $stranger is needed"
getent group $group >/dev/null && skip "gid $group exists here; this test wants its own"
mkdir -p "$TEST_TMP/d" "$TEST_TMP/state"
chmod 777 "$TEST_TMP/d"
echo "{\"access_group\": $group, \"state_dir\": \"$TEST_TMP/state\"}" >"$TEST_TMP/r3mapd.json"
with_group_members "r3map-it:x:$group:$(getent passwd $nobody | cut -d: -f1)"
start_bus "$(dirname "$0")/open-policy.conf"
start_r3mapd d --config "$TEST_TMP/r3mapd.json"
# Objects for the walk to find: an export and a managed export (mounts need nbd.ko; the
# vm suite has them).
expect_r3ctl 0 export memory:16M --listen 127.0.0.1:0 --name plain
pattern=$TEST_TMP/remote.img
head -c 16M /dev/zero >"$pattern"
expect_r3ctl 0 export "file:$pattern" --listen 127.0.0.1:0 --name cached --managed --cache "$TEST_TMP/cache"
fds_before=$(ls "/proc/$d_pid/fd" | wc -l)
seed=${DBUS_FUZZ_SEED:-$RANDOM}
echo "seed $seed (DBUS_FUZZ_SEED=$seed to replay)"
fuzz="$(dirname "$0")/dbus_fuzz.py"

echo "== as root (permitted)"
/usr/bin/python3 "$fuzz" --seed "$seed" --calls 30 --tmp "$TEST_TMP/d" \
	--keep-export memory:16M --keep-export "managed:file:$pattern" || fail "root: see above"
daemon_alive
echo "== as nobody, in the access group"
setpriv --reuid=$nobody --regid=$nobody --groups=$group /usr/bin/python3 "$fuzz" --seed "$((seed + 1))" --calls 30 \
	--tmp "$TEST_TMP/d" --keep-export memory:8M || fail "nobody: see above"
daemon_alive
echo "== as uid $stranger, outside the access group"
setpriv --reuid=$stranger --regid=$stranger --clear-groups /usr/bin/python3 "$fuzz" --seed "$((seed + 2))" --calls 30 \
	--tmp "$TEST_TMP/d" --expect-refused || fail "uid $stranger: see above"
daemon_alive

# What the random calls created (exports on port 0, say) goes away with a clean stop.
fds_after=$(ls "/proc/$d_pid/fd" | wc -l)
echo "r3mapd fds: $fds_before before, $fds_after after"
grep -n "critical\|terminate called\|AddressSanitizer" "$TEST_TMP/d.log" && fail "r3mapd logged a critical error"
stop_r3mapd d
echo PASS
