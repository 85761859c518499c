#!/usr/bin/env bash
# Builds the NBD session fuzzer with clang/libFuzzer (+ASan/UBSan) and runs it for a bounded
# time. Inputs that ever crashed it live in regressions/nbd and are replayed first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out="$FUZZ_BUILD_DIR"
seconds=${FUZZ_SECONDS:-45}
command -v clang++ >/dev/null || { echo "SKIP: clang++ is not installed" >&2; exit 77; }
mkdir -p "$out"

sources=(
	"$here/nbd_session_fuzz.cpp"
	"$src"/libr3d/base/*.cpp
	"$src"/libr3d/nbd/server.cpp "$src"/libr3d/nbd/session.cpp "$src"/libr3d/nbd/socket_reader.cpp
	"$src"/libr3d/backends/memory_backend.cpp "$src"/libr3d/chunks/bitmap.cpp
)
bin="$out/nbd_session_fuzz"
if [ ! -x "$bin" ] || [ -n "$(find "${sources[@]}" "$src"/libr3d/nbd/*.hpp -newer "$bin" 2>/dev/null)" ]; then
	echo "building $bin"
	if ! clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB -DSPDLOG_FMT_EXTERNAL \
		-I"$src/libr3d" -I"$src/libr3d/include" "${sources[@]}" -o "$bin.tmp" \
		$(pkg-config --libs spdlog fmt) -pthread 2>"$out/build.log"; then
		if grep -q "cannot find.*libclang_rt.fuzzer\|unable to find library -lclang_rt" "$out/build.log"; then
			echo "SKIP: libFuzzer runtime (libclang-rt-14-dev) is missing" >&2
			exit 77
		fi
		cat "$out/build.log" >&2
		exit 1
	fi
	mv "$bin.tmp" "$bin"
fi

corpus="$out/corpus"
mkdir -p "$corpus"
/usr/bin/python3 "$here/make_nbd_seeds.py" "$corpus"
regressions="$here/regressions/nbd"
mapfile -t kept < <(find "$regressions" -type f ! -name .keep 2>/dev/null)
if [ ${#kept[@]} -gt 0 ]; then
	echo "replaying ${#kept[@]} regression inputs"
	"$bin" -runs=0 "${kept[@]}"
fi
cd "$out"
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 "$corpus"
