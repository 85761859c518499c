#!/usr/bin/env bash
# Push sync through a hub to three destinations, real r3sync processes on loopback: a file
# (SYNC_TEST_SIZE, 256M) changed at random between rounds (a few % of its chunks) is pushed
# to an r3sync hub fanning out to three `r3sync serve --dir` processes, and after every round
# each destination's copy has the source's sha256. Faults: a destination killed with
# SIGKILL mid-round is restarted on the same directory and catches up; the link between the
# hub and a destination is cut for 10 s (a proxy dropping and refusing connections) while
# the other two keep taking generations, and the cut one converges after; then blackholed
# (bytes stop, nothing refused) while two rounds to the others must converge before it
# ends, measured against an uncut round of the same run; a source written
# while it is hashed converges on the next round.
source "$(dirname "$0")/../lib.sh"
require python3 sha256sum
[ -x "${R3SYNC:-}" ] || skip "r3sync is not built"
helpers=$(dirname "$0")/sync_helpers.py
size=${SYNC_TEST_SIZE:-256M}
# How long a destination may take to show a generation the hub acknowledged.
converge_limit=${SYNC_TEST_CONVERGE:-30}

dump_logs() {
	local f
	for f in "$TEST_TMP"/*.log; do
		echo "--- $(basename "$f")" >&2
		tail -n 20 "$f" >&2
	done
}
die() {
	dump_logs
	fail "$@"
}

src="$TEST_TMP/src.img"
# A quarter zeros, the rest random: pushes and the hub use --compress, so the first round
# carries zstd chunks (the zeros) next to raw ones (the random rest) end to end.
bytes=$(numfmt --from=iec "$size")
{
	head -c $((bytes / 4)) /dev/zero
	head -c $((bytes - bytes / 4)) /dev/urandom
} >"$src"

mapfile -t ports < <(python3 "$helpers" ports 6)
hub_port=${ports[0]}
proxy_port=${ports[4]}
declare -A serve_pid
start_serve() { # I: destination I on its port and directory
	local i=$1
	mkdir -p "$TEST_TMP/dst$i"
	"$R3SYNC" serve --listen "127.0.0.1:${ports[$i]}" --dir "$TEST_TMP/dst$i" \
		>>"$TEST_TMP/serve$i.out" 2>>"$TEST_TMP/serve$i.log" &
	serve_pid[$i]=$!
	track $!
}
# listening I: until destination I (or the hub) accepts connections.
listening() {
	local f=$TEST_TMP/serve$1.out
	[ "$1" != hub ] || f=$TEST_TMP/hub.out
	for _ in $(seq 100); do grep -q '^listening' "$f" 2>/dev/null && return; sleep 0.1; done
	die "r3sync $1 did not start"
}
for i in 1 2 3; do start_serve $i; done

# Destination 2 sits behind the proxy whose link the test cuts.
python3 "$helpers" proxy "$proxy_port" "${ports[2]}" "$TEST_TMP/proxy.ready" 2>"$TEST_TMP/proxy.log" &
proxy=$!
track $proxy
wait_for_file "$TEST_TMP/proxy.ready" || fail "the proxy did not start"

"$R3SYNC" hub --listen "127.0.0.1:$hub_port" --dir "$TEST_TMP/hub" --compress \
	--to "r3://127.0.0.1:${ports[1]}" --to "r3://127.0.0.1:$proxy_port" --to "r3://127.0.0.1:${ports[3]}" \
	--json >"$TEST_TMP/hub.out" 2>"$TEST_TMP/hub.log" &
hub=$!
track $hub
for i in 1 2 3 hub; do listening $i; done

round=0
# push: one round through the hub (it exits once the hub acknowledged it).
push() {
	round=$((round + 1))
	local t0=$SECONDS
	"$R3SYNC" push "$src" --to "r3://127.0.0.1:$hub_port" --once --compress --json \
		>>"$TEST_TMP/push.out" 2>>"$TEST_TMP/push.log" || die "push round $round failed"
	echo "round $round: $(tail -n1 "$TEST_TMP/push.out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("generation {generation}, {chunks_changed} of {chunks} chunks changed, {wire_bytes} bytes on the wire".format(**j))') ($((SECONDS - t0)) s)"
}

# converged I...: until each destination I holds the source's bytes (sha256), at most
# converge_limit seconds; fails otherwise.
converged() {
	local want i got deadline=$((SECONDS + converge_limit))
	want=$(sha256sum <"$src" | cut -d' ' -f1)
	for i in "$@"; do
		while :; do
			got=$(sha256sum <"$TEST_TMP/dst$i/$(basename "$src")" 2>/dev/null | cut -d' ' -f1) || got=""
			[ "$got" = "$want" ] && break
			[ $SECONDS -lt $deadline ] || die "destination $i differs from the source after round $round"
			sleep 0.5
		done
	done
}

mutate() { # PERCENT
	python3 "$helpers" mutate "$src" "$1" "$round" >/dev/null
}

# Timing a change by its arrival (each destination's "applied" line), not by sha256 of
# the copies, which on a busy machine takes longer than the sync.
now() { date +%s.%N; }
# applied NAME I: how many generations of NAME destination I has applied.
applied() { grep -c "^$1: generation [0-9]* applied" "$TEST_TMP/serve$2.out" 2>/dev/null || true; }
declare -A seen
mark() { # NAME I...: remember the counts
	local name=$1 i
	shift
	for i in "$@"; do seen[$i]=$(applied "$name" "$i"); done
}
applied_since() { # NAME I...: until each I applied one more generation of NAME than marked
	local name=$1 i deadline=$((SECONDS + converge_limit))
	shift
	for i in "$@"; do
		while [ "$(applied "$name" "$i")" -le "${seen[$i]}" ]; do
			[ $SECONDS -lt $deadline ] || die "destination $i applied no new generation of $name"
			sleep 0.05
		done
	done
}
elapsed() { python3 -c "print(round($(now) - $1, 3))"; }

# First contact: whole copies, then rounds of a few % changed.
push
converged 1 2 3
# The zeros travelled compressed: the first round sent well under the source's size.
sent=$(tail -n1 "$TEST_TMP/push.out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["bytes_sent"])')
echo "first round: $sent bytes of chunk payload for a $bytes-byte source"
[ "$sent" -lt $((bytes * 85 / 100)) ] || die "the first round sent $sent bytes: the zero chunks were not compressed"
for pct in 2 5; do
	mutate $pct
	push
	converged 1 2 3
done
echo "ok: $round rounds, every destination byte-identical after each"

# A destination killed mid-round: enough changed that the round takes a while.
mutate 30
"$R3SYNC" push "$src" --to "r3://127.0.0.1:$hub_port" --once --json \
	>>"$TEST_TMP/push.out" 2>>"$TEST_TMP/push.log" &
pusher=$!
round=$((round + 1))
sleep 0.3
kill -KILL "${serve_pid[3]}"
wait "${serve_pid[3]}" 2>/dev/null || true
wait $pusher || die "push round $round failed while destination 3 died"
converged 1 2
start_serve 3
converged 3
echo "ok: destination 3, killed mid-round $round, caught up after its restart"

# A 10 s link cut between the hub and destination 2: the others keep taking generations,
# both rounds before the cut ends.
kill -USR1 $proxy
cut_start=$SECONDS
cut_t0=$(now)
for pct in 3 3; do
	mark src.img 1 3
	mutate $pct
	push
	applied_since src.img 1 3
done
cut_during=$(elapsed "$cut_t0")
echo "cut: two rounds reached 1 and 3 in $cut_during s of the 10 s cut of 2"
python3 -c "import sys; sys.exit(0 if $cut_during < 10 else 1)" ||
	die "destinations 1 and 3 waited for cut destination 2 ($cut_during s for two rounds)"
converged 1 3
# The cut held: destination 2 has not seen these rounds.
[ "$(sha256sum <"$TEST_TMP/dst2/src.img" | cut -d' ' -f1)" != "$(sha256sum <"$src" | cut -d' ' -f1)" ] ||
	die "destination 2 took a round through a cut link"
sleep $((10 - (SECONDS - cut_start) > 0 ? 10 - (SECONDS - cut_start) : 0))
kill -USR2 $proxy
converged 2
echo "ok: destinations 1 and 3 converged during a 10 s cut of destination 2's link; 2 converged after"

# Blackholes of destination 2's link (bytes stop moving, new connections get no answer,
# nothing is refused): nobody may wait on it. A change is timed to destinations 1, 2 and 3
# uncut (from the write to each having applied it), then the link is blackholed for
# max(10 s, 4 uncut times) and two changes must reach 1 and 3 before it ends; 2 converges
# once it is restored. Once through the hub, once pushed straight to the three.
# blackhole NAME CHANGE: times CHANGE (a command that changes the source and, for the hub,
# pushes it) to destinations 1 2 3, then twice to 1 and 3 during a blackhole of 2.
blackhole() {
	local name=$1 change=$2 t0 uncut hole during left
	mark "$name" 1 2 3
	t0=$(now)
	$change
	applied_since "$name" 1 2 3
	uncut=$(elapsed "$t0")
	hole=$(python3 -c "print(max(10.0, 4 * $uncut))")
	kill -HUP $proxy
	t0=$(now)
	for _ in 1 2; do
		mark "$name" 1 3
		$change
		applied_since "$name" 1 3
	done
	during=$(elapsed "$t0")
	echo "$name: a change reached the three in $uncut s uncut; two reached 1 and 3 in $during s of a $hole s blackhole of 2"
	python3 -c "import sys; sys.exit(0 if $during < $hole else 1)" ||
		die "$name: destinations 1 and 3 waited for blackholed destination 2 ($during s for two changes, $uncut s for one uncut)"
	left=$(python3 -c "print(max(0.0, $hole - ($(now) - $t0)))")
	sleep "$left"
	kill -USR2 $proxy
}
hub_change() {
	mutate 3
	push
}
blackhole src.img hub_change
converged 1 2 3
echo "ok: through the hub, destinations 1 and 3 took changes during a blackhole of 2; 2 converged after"

direct=$TEST_TMP/direct.img
cp "$src" "$direct"
"$R3SYNC" push "$direct" --to "r3://127.0.0.1:${ports[1]}" --to "r3://127.0.0.1:$proxy_port" \
	--to "r3://127.0.0.1:${ports[3]}" --interval 500ms --json >"$TEST_TMP/direct.out" 2>"$TEST_TMP/direct.log" &
direct_push=$!
track $direct_push
src=$direct converged 1 2 3 # the first copy, under its own name
direct_change() {
	python3 "$helpers" mutate "$direct" 3 "$RANDOM" >/dev/null
}
blackhole direct.img direct_change
src=$direct converged 1 2 3
kill -TERM $direct_push
wait $direct_push 2>/dev/null || true
echo "ok: pushed straight to the three, 1 and 3 took changes during a blackhole of 2; 2 converged after"

# Changes while the source is hashed: that round may carry a mix; the next converges.
python3 "$helpers" churn "$src" "$TEST_TMP/stop-churn" 7 >"$TEST_TMP/churn.out" &
churn=$!
track $churn
sleep 0.2
push
touch "$TEST_TMP/stop-churn"
wait $churn || die "the churn writer failed"
push
converged 1 2 3
echo "ok: $(cat "$TEST_TMP/churn.out") writes during round $((round - 1)) converged on round $round"

kill -0 $hub 2>/dev/null || die "the hub exited"
for i in 1 2 3; do kill -0 "${serve_pid[$i]}" 2>/dev/null || die "destination $i exited"; done
echo "ok: the hub and every destination still run"
