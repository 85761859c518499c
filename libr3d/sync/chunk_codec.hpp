#pragma once

// zstd for sync chunk payloads (SyncChunk encoding 1). Level 1: a push is bounded by the
// link or by hashing, and faster levels keep compression off the critical path; a chunk
// that does not shrink travels raw.

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include <r3d/result.hpp>

namespace r3d::sync {

/// The chunk as one zstd frame (declaring its length), or nullopt when that is not shorter.
std::optional<std::string> compressChunk(std::span<const std::byte> chunk);
/// Decodes one zstd frame into exactly `out` (the chunk's length): EPROTO when the frame is
/// malformed, declares another length, or decodes to any other length.
ResultMsg<void> decompressChunk(std::span<const std::byte> frame, std::span<std::byte> out);

} // namespace r3d::sync
