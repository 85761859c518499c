#pragma once

// Splits a byte range into per-chunk pieces: an unaligned head, whole chunks, an unaligned
// tail. Every chunk-granular stage and backend walks ranges this way.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <r3d/result.hpp>

namespace r3d::stages {

struct ChunkPiece {
	uint64_t index;    ///< chunk number
	uint64_t inChunk;  ///< offset of the piece inside its chunk
	uint64_t length;   ///< bytes of the piece
	uint64_t bufPos;   ///< offset of the piece inside the caller's range
	uint64_t chunkLen; ///< length of the whole chunk (the last chunk may be short)

	bool whole() const { return inChunk == 0 && length == chunkLen; }
	uint64_t chunkOffset(uint64_t chunkSize) const { return index * chunkSize; }
};

/// Length of chunk `index` in a device of `deviceSize` bytes.
inline uint64_t chunkLength(uint64_t index, uint64_t chunkSize, uint64_t deviceSize)
{
	uint64_t start = index * chunkSize;
	return start >= deviceSize ? 0 : std::min(chunkSize, deviceSize - start);
}

/// Number of chunks covering `deviceSize` bytes.
inline uint64_t chunkCount(uint64_t deviceSize, uint64_t chunkSize)
{
	return (deviceSize + chunkSize - 1) / chunkSize;
}

/// Calls fn(ChunkPiece) for each piece of [offset, offset+length) in order and stops at
/// the first error. The range must already be checked against deviceSize.
template <class Fn>
Result<void> forEachChunk(uint64_t offset, uint64_t length, uint64_t chunkSize, uint64_t deviceSize, Fn &&fn)
{
	uint64_t pos = 0;
	while (pos < length) {
		uint64_t off = offset + pos;
		uint64_t index = off / chunkSize;
		uint64_t inChunk = off % chunkSize;
		uint64_t chunkLen = chunkLength(index, chunkSize, deviceSize);
		uint64_t n = std::min(chunkLen - inChunk, length - pos);
		R3D_TRY(fn(ChunkPiece{ index, inChunk, n, pos, chunkLen }));
		pos += n;
	}
	return {};
}

} // namespace r3d::stages
