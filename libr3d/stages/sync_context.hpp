#pragma once

#include <memory>

#include <r3d/read_writer_at.hpp>

#include "stages/chunk_geometry.hpp"
#include "stages/chunk_state.hpp"
#include "stages/remote_health.hpp"

namespace r3d::cache {
class Journal;
}

namespace r3d::stages {

/// What the synced stage, the puller and the pusher of one region share: the remote, the
/// local cache, where each chunk is, the journal (null for a memory cache) and the remote's
/// health. Owned by whoever assembles the region (ManagedRegion), outliving all three.
struct SyncContext {
	SyncContext(std::shared_ptr<ReadWriterAt> remoteIn, ChunkGeometry geometryIn)
		: remote(std::move(remoteIn)), geometry(geometryIn), state(geometryIn.count())
	{
	}

	std::shared_ptr<ReadWriterAt> remote;
	std::shared_ptr<ReadWriterAt> cache;
	ChunkGeometry geometry;
	ChunkState state;
	cache::Journal *journal = nullptr;
	RemoteHealth health;

	uint64_t offsetOf(uint64_t index) const { return index * geometry.chunk; }
	/// Bytes of chunks [first, first+count).
	uint64_t bytesOf(uint64_t first, uint64_t count) const
	{
		uint64_t end = std::min(geometry.size, (first + count) * geometry.chunk);
		return end - first * geometry.chunk;
	}
};

} // namespace r3d::stages
