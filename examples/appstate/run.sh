#!/usr/bin/env bash
# An app's state migrated between hosts while it runs: r3todo keeps its whole list in one
# file; "host A" serves that file as a migration seed, "host B" pulls it. By default A and B
# are two r3mapd daemons, each on a private system bus of its own, driven with r3ctl
# migrate; with --tools they are two r3migrate processes. Each side's NBD export is shown as
# a file by nbdfuse (no nbd.ko needed). Items are added on A before and during the pre-copy
# rounds; the finalize hook pauses r3todo on A; B's r3todo starts on B's copy and lists
# every item. See README.md.
#   run.sh [--tools] [ITEMS]   items added before and again during pre-copy (default 20); JSON=FILE
set -euo pipefail
mode=daemons
if [ "${1:-}" = --tools ]; then
	mode=tools
	shift
fi
items=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../../build
r3todo=${R3TODO:-$build/examples/appstate/r3todo}
if [ $mode = tools ]; then
	r3migrate=${R3MIGRATE:-$build/tools/r3migrate/r3migrate}
	need=("$r3migrate" "$r3todo")
else
	r3mapd=${R3MAPD:-$build/daemon/r3mapd}
	r3ctl=${R3CTL:-$build/cli/r3ctl/r3ctl}
	need=("$r3mapd" "$r3ctl" "$r3todo")
fi
for tool in "${need[@]}"; do
	[ -x "$tool" ] || { echo "run.sh: no $tool (build first, or set R3MIGRATE, R3MAPD, R3CTL and R3TODO)" >&2; exit 2; }
done
source "$here/../lib.sh"
make_work appstate
before_cleanup() {
	for m in "$work/a/mnt" "$work/b/mnt"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
}
now() { date +%s.%N; }
# wait_for FILE PATTERN: until a line of FILE matches (30 s).
wait_for() {
	for _ in $(seq 3000); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.01; done
	echo "run.sh: no '$2' in $1" >&2
	cat "$work"/*.log >&2
	exit 1
}
# mount DIR SOCKET: nbdfuse shows the NBD export on SOCKET as DIR/mnt/state.
mount_export() {
	mkdir -p "$1/mnt"
	nbdfuse "$1/mnt/state" --unix "$2" 2>>"$1/nbdfuse.log" &
	pids+=($!)
	for _ in $(seq 1000); do [ -e "$1/mnt/state" ] && return; sleep 0.01; done
	echo "run.sh: nbdfuse did not mount $2" >&2
	exit 1
}
todo() { "$r3todo" "$@"; }
mkdir -p "$work/a" "$work/b"

# Host A: the state file (4 MiB, room for 32000 items) as the migration's source. The hook
# the seeder runs before it fences writes: note the time, then pause r3todo (it flushes and
# refuses changes from then on).
truncate -s 4M "$work/a/state.img"
cat >"$work/a/pause.sh" <<HOOK
#!/bin/sh
date +%s.%N >"$work/a/hook.time"
"$r3todo" "$work/a/todo.sock" pause >/dev/null || exit 1
date +%s.%N >>"$work/a/hook.time"
HOOK
chmod +x "$work/a/pause.sh"
# The two hosts' migration tools: seed_start, pull_start, finalize, wait_owner; the last
# line of $final is the pull's last status (JSON).
if [ $mode = tools ]; then
	seed_start() {
		"$r3migrate" seed "file:$work/a/state.img" --listen 127.0.0.1:0 --export "unix:$work/a/nbd.sock" \
			--on-finalize "$work/a/pause.sh" >"$work/seed.out" 2>"$work/seed.log" &
		pids+=($!)
		wait_for "$work/seed.out" '^r3://'
		uri=$(grep '^r3://' "$work/seed.out")
	}
	# Finalized by hand (SIGUSR1) once the items are in.
	pull_start() {
		"$r3migrate" pull "$uri" --export "unix:$work/b/nbd.sock" --finalize manual --json \
			>"$work/pull.out" 2>"$work/pull.log" &
		puller=$!
		pids+=($puller)
		wait_for "$work/pull.log" 'pre-copy'
	}
	finalize() { kill -USR1 "$puller"; }
	wait_owner() {
		wait_for "$work/pull.out" '"phase"'
		grep -q '"phase":"complete".*"owner":true' "$work/pull.out" ||
			{ cat "$work/pull.log" >&2; echo "run.sh: B did not take ownership" >&2; exit 1; }
	}
	final=$work/pull.out
else
	# Each host: a private system bus of its own and an r3mapd on it (lib.sh).
	declare -A bus
	private_r3mapd "$work/a"
	bus[a]=$r3mapd_bus
	private_r3mapd "$work/b"
	bus[b]=$r3mapd_bus
	# on NAME ARGS...: r3ctl ARGS against host NAME's daemon.
	on() {
		local h=$1
		shift
		DBUS_SYSTEM_BUS_ADDRESS=${bus[$h]} "$r3ctl" "$@"
	}
	field() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
	seed_start() {
		on a --json migrate seed "file:$work/a/state.img" --listen 127.0.0.1:0 --export "unix:$work/a/nbd.sock" \
			--on-finalize "$work/a/pause.sh" >"$work/seed.json"
		uri=$(field "$work/seed.json" uri)
	}
	# phase: B's migration's phase (its status in $work/status.json).
	phase() {
		on b --json migrate status "$pull_id" >"$work/status.json"
		field "$work/status.json" phase
	}
	pull_start() {
		on b --json migrate pull "$uri" --export "unix:$work/b/nbd.sock" --finalize manual >"$work/pull.json"
		pull_id=$(field "$work/pull.json" id)
		for _ in $(seq 3000); do [ "$(phase)" = pre-copy ] && return; sleep 0.01; done
		echo "run.sh: B's migration never reached pre-copy: $(cat "$work/status.json")" >&2
		exit 1
	}
	# --wait: returns once the migration is complete or failed; its last line is the status.
	finalize() { on b --json migrate finalize "$pull_id" --wait >"$work/final.out" || true; }
	# grep, not a JSON parser: the clock of the app's downtime runs.
	wait_owner() {
		tail -n1 "$work/final.out" | grep '"owner":true' | grep -q '"phase":"complete"' ||
			{ cat "$work/final.out" "$work"/[ab]/r3mapd.log >&2; echo "run.sh: B did not take ownership" >&2; exit 1; }
	}
	final=$work/final.out
fi

seed_start
mount_export "$work/a" "$work/a/nbd.sock"
"$r3todo" serve "$work/a/mnt/state" "$work/a/todo.sock" >"$work/todo-a.log" 2>&1 &
pids+=($!)
wait_for "$work/todo-a.log" '^serving'
for i in $(seq "$items"); do todo "$work/a/todo.sock" add "before the migration $i" >/dev/null; done
todo "$work/a/todo.sock" done 1 >/dev/null

# Host B pulls while A keeps taking items; finalized by hand once they are in.
pull_start
for i in $(seq "$items"); do todo "$work/a/todo.sock" add "during pre-copy $i" >/dev/null; done
todo "$work/a/todo.sock" done 2 >/dev/null
finalize
wait_owner
t_owner=$(now)
# B serves: its export on a mount, r3todo on B's copy, answering.
mount_export "$work/b" "$work/b/nbd.sock"
t_mounted=$(now)
"$r3todo" serve "$work/b/mnt/state" "$work/b/todo.sock" >"$work/todo-b.log" 2>&1 &
pids+=($!)
wait_for "$work/todo-b.log" '^serving'
todo "$work/b/todo.sock" list >"$work/b/list"
t_serving=$(now)

# A is paused: it refuses changes; it stops, and its mount goes.
if todo "$work/a/todo.sock" add "after the pause" >/dev/null; then
	echo "run.sh: A took a change after the finalize hook paused it" >&2
	exit 1
fi
todo "$work/a/todo.sock" list >"$work/a/list"
todo "$work/a/todo.sock" quit >/dev/null
umount "$work/a/mnt"
# B goes on where A stopped.
todo "$work/b/todo.sock" add "on host B" >/dev/null
todo "$work/b/todo.sock" done 3 >/dev/null
todo "$work/b/todo.sock" list >"$work/b/list-after"
todo "$work/b/todo.sock" quit >/dev/null

cmp -s "$work/a/list" "$work/b/list" || { diff "$work/a/list" "$work/b/list" >&2; echo "run.sh: B's list differs from A's" >&2; exit 1; }
echo "B lists $(wc -l <"$work/b/list") items, the same as A's last list; after one more on B:"
sed -n '1,3p;$p' "$work/b/list-after" | sed 's/^/  /'
/usr/bin/python3 - $(cat "$work/a/hook.time") "$t_owner" "$t_mounted" "$t_serving" "$(tail -n1 "$final")" "$work/b/list-after" "$items" "${JSON:-}" <<'PY'
import json, re, sys
hook, paused, owner, mounted, serving = (float(x) for x in sys.argv[1:6])
pull, listing, items, out = json.loads(sys.argv[6]), sys.argv[7], int(sys.argv[8]), sys.argv[9]
lines = open(listing).read().splitlines()
want = [f"before the migration {i}" for i in range(1, items + 1)] + [f"during pre-copy {i}" for i in range(1, items + 1)] + ["on host B"]
got = [re.match(r"\d+ \[.\] (.*)$", l).group(1) for l in lines]
assert got == want, f"B's list is not every item in order: {got}"
done = [l.split(" ", 1)[0] for l in lines if "[x]" in l]
assert done == ["1", "2", "3"], f"done items: {done}"
app = serving - hook
# r3migrate says downtime_ns, r3ctl measured_downtime_us.
handover = pull["downtime_ns"] / 1e6 if "downtime_ns" in pull else pull["measured_downtime_us"] / 1e3
print("| items | pre-copy rounds | region | pulled | hook to A paused | handover (measured by B) | hook to B owning | to B mounted | to B's r3todo answering |")
print("|---|---|---|---|---|---|---|---|---|")
ms = lambda t: f"{(t - hook) * 1e3:.0f} ms"
print(f"| {len(lines)} | {pull['round']} | {pull['region_bytes'] >> 20} MiB | {pull['transferred_bytes'] >> 10} KiB | {ms(paused)} | {handover:.1f} ms | {ms(owner)} | {ms(mounted)} | {ms(serving)} |")
print(f"downtime of the app (the finalize hook fired to B's r3todo answering): {app * 1e3:.0f} ms")
if out:
    json.dump({"items": len(lines), "rounds": pull["round"], "transferred_bytes": pull["transferred_bytes"],
               "paused_ms": (paused - hook) * 1e3, "handover_ms": handover, "owner_ms": (owner - hook) * 1e3, "mounted_ms": (mounted - hook) * 1e3,
               "app_downtime_ms": app * 1e3}, open(out, "w"), indent=1)
PY
