#!/usr/bin/env bash
# Runs one libFuzzer target (FUZZ_TARGET: nbd, frame, migration, journal, region or sync) for a bounded time, after replaying
# the inputs that once crashed it (regressions/<target>). The target is FUZZ_BIN; when
# FUZZ_BUILD_DIR is set, it is first built there by meson with clang and -Dfuzz=true
# (configured on the first run, incremental after that; see meson.build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${FUZZ_TARGET:?}" "${FUZZ_BIN:?}" "${FUZZ_WORK_DIR:?}" "${FUZZ_SOURCE_ROOT:?}"

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# Configures and builds FUZZ_BUILD_DIR's target; one runner at a time, as the fuzz
# targets share that build's libr3d.
build_target() {
	local build=$FUZZ_BUILD_DIR log
	command -v clang++ >/dev/null || skip "clang++ is not installed"
	mkdir -p "$(dirname "$build")"
	exec 9>"$build.lock"
	flock 9
	log="$build.log"
	if [ ! -f "$build/build.ninja" ]; then
		echo "configuring $build (clang, -Dfuzz=true)"
		rm -rf "$build"
		if ! CC=clang CXX=clang++ meson setup "$build" "$FUZZ_SOURCE_ROOT" -Dfuzz=true \
			-Ddaemon=disabled -Dman=disabled >"$log" 2>&1; then
			cat "$log" >&2
			rm -rf "$build"
			exit 1
		fi
	fi
	echo "building $FUZZ_BIN"
	if ! ninja -C "$build" "${FUZZ_BIN#"$build"/}" >"$log" 2>&1; then
		if grep -q "cannot find.*libclang_rt.fuzzer\|unable to find library -lclang_rt" "$log"; then
			skip "the libFuzzer runtime (libclang-rt-14-dev) is missing"
		fi
		cat "$log" >&2
		exit 1
	fi
	exec 9>&-
}

[ -z "${FUZZ_BUILD_DIR:-}" ] || build_target

corpus=$FUZZ_WORK_DIR/corpus
mkdir -p "$corpus"
case $FUZZ_TARGET in
nbd)
	/usr/bin/python3 "$here/make_nbd_seeds.py" "$corpus"
	maxlen=8192 seconds=${FUZZ_SECONDS:-45}
	;;
frame)
	R3_WRITE_SEEDS="$corpus" "$FUZZ_BIN"
	maxlen=70000 seconds=${FUZZ_SECONDS:-30}
	;;
migration)
	R3_WRITE_SEEDS="$corpus" "$FUZZ_BIN"
	maxlen=70000 seconds=${FUZZ_SECONDS:-30}
	;;
sync)
	R3_WRITE_SEEDS="$corpus" "$FUZZ_BIN"
	maxlen=70000 seconds=${FUZZ_SECONDS:-30}
	;;
journal)
	R3_WRITE_SEEDS="$corpus" "$FUZZ_BIN"
	maxlen=16384 seconds=${FUZZ_SECONDS:-30}
	;;
region)
	# No seeds of its own: the kept corpus, or libFuzzer's empty start.
	maxlen=8192 seconds=${FUZZ_SECONDS:-30}
	;;
*)
	echo "unknown fuzz target $FUZZ_TARGET" >&2
	exit 1
	;;
esac

mapfile -t kept < <(find "$here/regressions/$FUZZ_TARGET" -type f ! -name .keep 2>/dev/null)
if [ ${#kept[@]} -gt 0 ]; then
	echo "replaying ${#kept[@]} regression inputs"
	"$FUZZ_BIN" -runs=0 "${kept[@]}"
fi
# The corpus kept in the tree (scripts/fuzz-campaign.sh grows it) is read, never written here.
kept_corpus=()
[ ! -d "$here/corpus/$FUZZ_TARGET" ] || kept_corpus=("$here/corpus/$FUZZ_TARGET")
cd "$FUZZ_WORK_DIR"
"$FUZZ_BIN" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" -print_final_stats=1 \
	${FUZZ_FLAGS:-} "$corpus" "${kept_corpus[@]}"
