# Shared by the fuzz scripts (source it): build a libFuzzer target with clang and
# ASan/UBSan when its sources changed, replay the inputs that once crashed it, then fuzz for
# a bounded time.
set -euo pipefail
command -v clang++ >/dev/null || { echo "SKIP: clang++ is not installed" >&2; exit 77; }

# fuzz_build BIN WATCHED... -- CLANG_ARGS...: rebuilds BIN when it is missing or older than
# any WATCHED file (sources and headers).
fuzz_build() {
	local bin=$1
	shift
	local watched=()
	while [ "$1" != "--" ]; do
		watched+=("$1")
		shift
	done
	shift
	local log
	log="$(dirname "$bin")/build.log"
	[ ! -x "$bin" ] || [ -n "$(find "${watched[@]}" -newer "$bin" 2>/dev/null)" ] || return 0
	echo "building $bin"
	if ! clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE "$@" -o "$bin.tmp" 2>"$log"; then
		if grep -q "cannot find.*libclang_rt.fuzzer\|unable to find library -lclang_rt" "$log"; then
			echo "SKIP: libFuzzer runtime (libclang-rt-14-dev) is missing" >&2
			exit 77
		fi
		cat "$log" >&2
		exit 1
	fi
	mv "$bin.tmp" "$bin"
}

# fuzz_run BIN CORPUS REGRESSIONS MAX_LEN SECONDS
fuzz_run() {
	local bin=$1 corpus=$2 regressions=$3 maxlen=$4 seconds=$5
	local kept
	mapfile -t kept < <(find "$regressions" -type f ! -name .keep 2>/dev/null)
	if [ ${#kept[@]} -gt 0 ]; then
		echo "replaying ${#kept[@]} regression inputs"
		"$bin" -runs=0 "${kept[@]}"
	fi
	cd "$(dirname "$bin")"
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" -print_final_stats=1 "$corpus"
}
