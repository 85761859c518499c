#pragma once

// The aligned-chunk rules in one place: a device of `size` bytes cut into chunks of `chunk`
// bytes, the last one possibly short. Stages, chunk stores and the r3 wire check requests here.

#include <cerrno>
#include <cstdint>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "base/limits.hpp"

namespace r3d::stages {

struct ChunkGeometry {
	uint64_t size = 0;
	uint64_t chunk = 0;

	static bool validChunk(uint64_t chunk)
	{
		return chunk >= limits::kMinChunk && chunk <= limits::kMaxChunk;
	}

	uint64_t count() const { return chunk ? (size + chunk - 1) / chunk : 0; }

	/// Length of chunk `index` (0 past the end).
	uint64_t lengthOf(uint64_t index) const
	{
		uint64_t start = index * chunk;
		return start >= size ? 0 : (size - start < chunk ? size - start : chunk);
	}

	/// [offset, offset+length) starts on a chunk boundary and ends on one or at the device end.
	Result<void> checkWholeChunks(uint64_t offset, uint64_t length, bool forWrite) const
	{
		R3D_TRY(checkRange(offset, length, size, forWrite));
		uint64_t end = offset + length;
		if (offset % chunk != 0 || (end % chunk != 0 && end != size))
			return unexpected(EINVAL);
		return {};
	}

	/// [offset, offset+length) is exactly one chunk.
	Result<void> checkOneChunk(uint64_t offset, uint64_t length, bool forWrite) const
	{
		R3D_TRY(checkRange(offset, length, size, forWrite));
		uint64_t expected = offset % chunk == 0 ? lengthOf(offset / chunk) : 0;
		if (expected == 0 || length != expected)
			return unexpected(EINVAL);
		return {};
	}
};

} // namespace r3d::stages
