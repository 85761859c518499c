#!/usr/bin/env bash
# Builds the r3 transport frame fuzzer with clang/libFuzzer (+ASan/UBSan) and runs it for a
# bounded time. Inputs that ever crashed it live in regressions/frame and are replayed first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out="$FUZZ_BUILD_DIR"
seconds=${FUZZ_SECONDS:-30}
command -v clang++ >/dev/null || { echo "SKIP: clang++ is not installed" >&2; exit 77; }
command -v protoc >/dev/null || { echo "SKIP: protoc is not installed" >&2; exit 77; }
mkdir -p "$out/gen"

proto="$src/libr3d/transport/proto/r3/v1/rpc.proto"
sources=(
	"$here/frame_fuzz.cpp"
	"$src"/libr3d/transport/{frame,messages,request_check}.cpp
	"$src/libr3d/base/read_writer_at.cpp"
)
bin="$out/frame_fuzz"
if [ ! -x "$bin" ] || [ -n "$(find "${sources[@]}" "$proto" "$src"/libr3d/transport/*.hpp -newer "$bin" 2>/dev/null)" ]; then
	echo "building $bin"
	protoc --proto_path="$(dirname "$proto")" --cpp_out="$out/gen" "$proto"
	if ! clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -I"$src/libr3d" -I"$src/libr3d/include" -I"$out/gen" \
		"${sources[@]}" "$out/gen/rpc.pb.cc" -o "$bin.tmp" \
		$(pkg-config --libs protobuf-lite fmt) -pthread 2>"$out/build.log"; then
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
R3_WRITE_SEEDS="$corpus" "$bin"
regressions="$here/regressions/frame"
mapfile -t kept < <(find "$regressions" -type f ! -name .keep 2>/dev/null)
if [ ${#kept[@]} -gt 0 ]; then
	echo "replaying ${#kept[@]} regression inputs"
	"$bin" -runs=0 "${kept[@]}"
fi
cd "$out"
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=70000 -print_final_stats=1 "$corpus"
