#!/usr/bin/env bash
# Builds the NBD session fuzzer with clang/libFuzzer (+ASan/UBSan) and runs it for a bounded
# time. Inputs that ever crashed it live in regressions/nbd and are replayed first.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/fuzz_lib.sh"
src=$(cd "$here/../.." && pwd)
out="$FUZZ_BUILD_DIR"
mkdir -p "$out/corpus"

sources=(
	"$here/nbd_session_fuzz.cpp"
	"$src"/libr3d/base/*.cpp
	"$src"/libr3d/nbd/errors.cpp "$src"/libr3d/nbd/handshake.cpp "$src"/libr3d/nbd/server.cpp
	"$src"/libr3d/nbd/session.cpp "$src"/libr3d/nbd/socket_reader.cpp "$src"/libr3d/nbd/transmission.cpp
	"$src"/libr3d/backends/memory_backend.cpp "$src"/libr3d/stages/bitmap.cpp
)
fuzz_build "$out/nbd_session_fuzz" "${sources[@]}" "$src"/libr3d/nbd/*.hpp -- \
	-DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB -DSPDLOG_FMT_EXTERNAL \
	-I"$src/libr3d" -I"$src/libr3d/include" "${sources[@]}" $(pkg-config --libs spdlog fmt) -pthread
/usr/bin/python3 "$here/make_nbd_seeds.py" "$out/corpus"
fuzz_run "$out/nbd_session_fuzz" "$out/corpus" "$here/regressions/nbd" 8192 "${FUZZ_SECONDS:-45}"
