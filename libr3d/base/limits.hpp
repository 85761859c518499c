#pragma once

// The size rules every entry point shares. Each wire (NBD, r3) and each config surface
// (r3mapd.conf, r3serve flags, URI parameters) takes its bounds from here, so they cannot drift.

#include <cstdint>

namespace r3d::limits {

/// Default cap on one request's or reply's payload, on every wire we speak.
inline constexpr uint32_t kDefaultMaxPayload = 32u << 20;
/// Bounds a user may set the payload cap to (NBD block size minimum .. what a frame can carry).
inline constexpr uint64_t kMinMaxPayload = 4096;
inline constexpr uint64_t kMaxMaxPayload = 256ull << 20;

/// Chunk sizes any stage or backend accepts.
inline constexpr uint64_t kMinChunk = 512;
inline constexpr uint64_t kMaxChunk = 64ull << 20;

} // namespace r3d::limits
