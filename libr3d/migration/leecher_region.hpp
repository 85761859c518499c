#pragma once

// The leecher's copy of the region: the managed machinery with the seeder as the remote.
//
//   callers → Lockable → WriteFence → SyncedReadWriterAt ─┬─ cache (memory)
//                                                          └─ Puller ⇄ seeder (block service)
//
// Brought up locked (I/O waits, so nothing stale reaches a page cache) until the handover
// commits; every round's dirty list makes its chunks remote again and the puller fetches
// them (background, kicked at once); after the handover the final list is remote, the lock
// opens and reads of those chunks are pulled on demand first (post-copy). There is no
// pusher: the leecher never writes back to the seeder (it owns the region after the
// commit, or is a read-only copy, sealed by the fence).

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "cache/local_cache.hpp"
#include "migration/write_fence.hpp"
#include "stages/lockable_read_writer_at.hpp"
#include "stages/puller.hpp"
#include "stages/pusher.hpp"
#include "stages/sync_context.hpp"
#include "stages/synced_read_writer_at.hpp"

namespace r3d::migration {

class LeecherRegion : public std::enable_shared_from_this<LeecherRegion>
{
public:
	/// `remote`: the seeder's block export. Starts the pull workers; the region is locked.
	static ResultMsg<std::shared_ptr<LeecherRegion>> open(std::shared_ptr<ReadWriterAt> remote, uint64_t chunk,
							      stages::PullerOptions pull);
	~LeecherRegion();
	LeecherRegion(const LeecherRegion &) = delete;
	LeecherRegion &operator=(const LeecherRegion &) = delete;

	/// What callers read and write (any offset); keeps the region alive.
	std::shared_ptr<ReadWriterAt> top();

	uint64_t size() const { return ctx_.geometry.size; }
	uint64_t chunk() const { return ctx_.geometry.chunk; }

	/// Makes `chunks` remote again (a dirty list): a pull in flight of one of them is waited
	/// out first, since it may carry the data from before the write. Then wakes the puller.
	void markRemote(const std::vector<uint64_t> &chunks);
	/// Chunks not in the cache yet (remote or being pulled).
	uint64_t missingChunks() const;
	uint64_t missingBytes() const;
	/// The chunks present here, ascending (a resume's held set).
	std::vector<uint64_t> heldChunks() const;
	uint64_t pulledBytes() const { return puller_->stats().pulledBytes; }

	void unlock() { lock_->unlock(); }
	bool locked() const { return lock_->locked(); }
	/// A read-only copy: writes fail with EROFS from now on.
	void seal() { fence_->seal(); }
	/// Stops the pull workers (demand pulls still work).
	void stop();

private:
	LeecherRegion(std::shared_ptr<ReadWriterAt> remote, stages::ChunkGeometry geometry);

	stages::SyncContext ctx_;
	std::unique_ptr<cache::LocalCache> cache_;
	std::unique_ptr<stages::Puller> puller_;
	std::unique_ptr<stages::Pusher> pusher_; ///< never started: SyncedReadWriterAt wants one
	std::shared_ptr<stages::SyncedReadWriterAt> synced_;
	std::shared_ptr<WriteFence> fence_;
	std::shared_ptr<stages::LockableReadWriterAt> lock_;
};

} // namespace r3d::migration
