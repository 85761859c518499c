#!/usr/bin/env bash
# Builds the r3 transport frame fuzzer with clang/libFuzzer (+ASan/UBSan) and runs it for a
# bounded time. Inputs that ever crashed it live in regressions/frame and are replayed first.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/fuzz_lib.sh"
src=$(cd "$here/../.." && pwd)
out="$FUZZ_BUILD_DIR"
command -v protoc >/dev/null || { echo "SKIP: protoc is not installed" >&2; exit 77; }
mkdir -p "$out/gen" "$out/corpus"

proto="$src/libr3d/transport/proto/r3/v1/rpc.proto"
sources=(
	"$here/frame_fuzz.cpp"
	"$src"/libr3d/transport/frame.cpp "$src"/libr3d/transport/block/{messages,ops,request_check}.cpp
	"$src/libr3d/base/read_writer_at.cpp"
)
protoc --proto_path="$(dirname "$proto")" --cpp_out="$out/gen" "$proto"
fuzz_build "$out/frame_fuzz" "${sources[@]}" "$proto" "$src"/libr3d/transport/*.hpp "$src"/libr3d/transport/block/*.hpp -- \
	-I"$src/libr3d" -I"$src/libr3d/include" -I"$out/gen" "${sources[@]}" "$out/gen/rpc.pb.cc" \
	$(pkg-config --libs protobuf-lite fmt) -pthread
R3_WRITE_SEEDS="$out/corpus" "$out/frame_fuzz"
fuzz_run "$out/frame_fuzz" "$out/corpus" "$here/regressions/frame" 70000 "${FUZZ_SECONDS:-30}"
