#pragma once

// The one encoding of a set of chunk indices on the wire (proto/r3/v1/chunk_set.proto), for
// the migration service's dirty lists and the sync service's changed-chunk lists: a set is
// cut into windows of kWindowChunks, each written as (gap, length) runs or as a bitmap,
// whichever is smaller. The decoder validates every window against the region.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <r3d/result.hpp>

namespace r3 {
namespace v1 {
class ChunkSet;
}
} // namespace r3

namespace r3d::transport {

/// Chunks in one window of a chunk set: a full bitmap of it is 32 KiB, so every message
/// stays well under the transport's default 64 KiB meta cap.
inline constexpr uint64_t kWindowChunks = 262144;
inline constexpr size_t kMaxBitmapBytes = kWindowChunks / 8;
/// Most runs one window may carry; the encoder switches to the bitmap long before.
inline constexpr size_t kMaxRuns = 16384;

/// One window [first, end) of a chunk set, decoded to ascending chunk indices.
struct ChunkWindow {
	uint64_t first = 0;
	uint64_t end = 0;
	std::vector<uint64_t> chunks;
};

/// Cuts an ascending, duplicate-free list of chunk indices of a region of `chunkCount`
/// chunks into windows of kWindowChunks, skipping empty ones; an empty list gives one empty
/// window, so a set always has at least one message to carry `last`.
std::vector<ChunkWindow> splitWindows(const std::vector<uint64_t> &chunks, uint64_t chunkCount);

/// Writes `w` (chunks ascending and inside the window) as runs or a bitmap.
void fillChunkSet(r3::v1::ChunkSet &pb, const ChunkWindow &w);
/// Reads a window of a region of `chunkCount` chunks; EPROTO naming `what` for a window
/// outside the region or over kWindowChunks, both encodings at once, non-canonical or
/// overrunning runs, or a bitmap of the wrong length.
ResultMsg<ChunkWindow> readChunkSet(const r3::v1::ChunkSet &pb, uint64_t chunkCount, const char *what);

} // namespace r3d::transport
