#!/usr/bin/env bash
# A fuzz campaign: runs one libFuzzer target (nbd, frame, migration, journal, region or sync) for a given
# time with N jobs, then merges what it found into the corpus kept in the tree
# (tests/fuzz/corpus/TARGET, minimized with -merge=1) and prints the executions.
#   scripts/fuzz-campaign.sh TARGET SECONDS [JOBS]        (after scripts/bootstrap.sh)
# Crashes are left in build/tests/fuzz/TARGET/ (crash-*); copy a fixed one to
# tests/fuzz/regressions/TARGET/ so every later run replays it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: fuzz-campaign.sh TARGET SECONDS [JOBS]}
seconds=${2:?usage: fuzz-campaign.sh TARGET SECONDS [JOBS]}
jobs=${3:-1}
declare -A sources=([nbd]=nbd_session_fuzz [frame]=frame_fuzz [migration]=migration_fuzz [journal]=journal_fuzz [region]=region_fuzz [sync]=sync_fuzz)
[ -n "${sources[$target]:-}" ] || { echo "fuzz-campaign: unknown target '$target' (nbd, frame, migration, journal, region, sync)" >&2; exit 2; }
build=$root/build/fuzz-clang
work=$root/build/tests/fuzz/$target
log=$work/campaign.log
mkdir -p "$work" "$root/tests/fuzz/corpus/$target"
# Under load a unit can wait for the CPU for seconds: a campaign allows 60 s per unit.
flags="-timeout=60 -fork=$jobs -ignore_crashes=1"
[ "$jobs" -gt 1 ] || flags="-timeout=60"
echo "fuzz-campaign: $target for ${seconds}s with $jobs job(s); log $log"
status=0
FUZZ_TARGET=$target FUZZ_SOURCE_ROOT=$root FUZZ_WORK_DIR=$work FUZZ_BUILD_DIR=$build \
	FUZZ_BIN=$build/tests/fuzz/${sources[$target]} FUZZ_SECONDS=$seconds FUZZ_FLAGS="$flags" \
	bash "$root/tests/fuzz/fuzz.sh" >"$log" 2>&1 || status=$?
# -print_final_stats gives the count of a single process; -fork prints it per round.
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
[ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9][0-9]*\): cov.*/\1/p' "$log" | tail -n1)
crashes=$(find "$work" -maxdepth 1 -name 'crash-*' | wc -l)
before=$(find "$root/tests/fuzz/corpus/$target" -type f | wc -l)
"$build/tests/fuzz/${sources[$target]}" -merge=1 "$root/tests/fuzz/corpus/$target" "$work/corpus" >>"$log" 2>&1
after=$(find "$root/tests/fuzz/corpus/$target" -type f | wc -l)
echo "fuzz-campaign: $target: ${runs:-?} executions, $crashes crash inputs, corpus $before -> $after files, exit $status"
exit "$status"
