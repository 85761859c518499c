#pragma once

// A managed region: a remote backend with a local cache in front, pulled in the background
// (demand first), written locally and pushed back on an interval, journaled so a restart
// with the same cache resumes. What r3serve --managed exports over NBD and what a
// ManagedMount attaches to /dev/nbdN:
//
//   callers → SyncedReadWriterAt ─┬─ cache (memory, or cache dir: data + journal)
//                                 └─ Puller / Pusher ⇄ remote pipeline
//
// Lifetime: held by shared_ptr; top() and meta() keep it alive. close() pushes what is dirty
// and stops the workers; the destructor stops them without pushing (the journal keeps
// the dirty chunks for the next mount of the same cache).

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "base/counters.hpp"
#include "cache/local_cache.hpp"
#include "mount/managed_options.hpp"
#include "nbd/meta_source.hpp"
#include "stages/puller.hpp"
#include "stages/pusher.hpp"
#include "stages/sync_context.hpp"
#include "stages/synced_read_writer_at.hpp"

namespace r3d::mount {

enum class SyncState { Syncing, Idle, Degraded };
/// "syncing", "idle", "degraded": the Mount1.State values of a managed mount.
const char *syncStateName(SyncState state);

struct ManagedStatus {
	SyncState state = SyncState::Idle;
	uint64_t size = 0;
	uint64_t chunk = 0;
	uint64_t localBytes = 0; ///< present in the cache (clean or dirty)
	uint64_t dirtyBytes = 0; ///< written here, not yet on the remote
	uint64_t pulledBytes = 0;
	uint64_t pushedBytes = 0;
	uint64_t pullRate = 0; ///< bytes/s over the last second or so
	uint64_t pushRate = 0;
	std::string lastError; ///< why the remote is degraded
	std::string cache;     ///< the cache directory, "" for memory
	bool resumed = false;  ///< started from a journal
};

/// Progress of a long operation: bytes done, bytes to go. Return false to cancel.
using Progress = std::function<bool(uint64_t done, uint64_t left)>;

class ManagedRegion : public std::enable_shared_from_this<ManagedRegion>
{
public:
	/// `remote` is the remote's pipeline top (whole chunks of its own granularity are fine);
	/// `remoteUri` is its identity in the journal. Starts the workers; with pull-first,
	/// returns once that much is local.
	static ResultMsg<std::shared_ptr<ManagedRegion>> open(std::shared_ptr<ReadWriterAt> remote,
							      const std::string &remoteUri, ManagedOptions options,
							      const Progress &pullFirstProgress = {});
	~ManagedRegion();
	ManagedRegion(const ManagedRegion &) = delete;
	ManagedRegion &operator=(const ManagedRegion &) = delete;

	/// What callers read and write (any offset).
	std::shared_ptr<ReadWriterAt> top();
	/// x-r3map:present and x-r3map:dirty, for an NBD export of top().
	std::shared_ptr<nbd::MetaSource> meta();

	uint64_t size() const { return ctx_.geometry.size; }
	uint64_t chunk() const { return ctx_.geometry.chunk; }
	const ManagedOptions &options() const { return options_; }
	ManagedStatus status() const;
	Counters counters() const;

	/// Blocks until `bytes` are local (capped at the size). Progress: (local, left).
	ResultMsg<void> waitLocal(uint64_t bytes, const Progress &progress = {});
	/// Pushes everything dirty and returns once the remote has it (Sync()). Progress:
	/// (pushed, dirty left).
	ResultMsg<void> syncAll(const Progress &progress = {});
	/// Stops pulling; pushes everything dirty (unless `discardDirty`, which leaves it in the
	/// cache's journal for the next mount of the same cache), commits the journal. Idempotent.
	ResultMsg<void> close(bool discardDirty = false, const Progress &progress = {});

	stages::SyncContext &context() { return ctx_; }

private:
	class Meta;
	ManagedRegion(std::shared_ptr<ReadWriterAt> remote, stages::ChunkGeometry geometry, ManagedOptions options);

	ManagedOptions options_;
	stages::SyncContext ctx_;
	std::unique_ptr<cache::LocalCache> cache_;
	std::unique_ptr<stages::Puller> puller_;
	std::unique_ptr<stages::Pusher> pusher_;
	std::unique_ptr<stages::SyncedReadWriterAt> synced_;
	std::unique_ptr<Meta> meta_;
	std::mutex closeMutex_;
	bool closed_ = false;

	mutable std::mutex rateMutex_;
	mutable std::chrono::steady_clock::time_point rateAt_{};
	mutable uint64_t ratePulled_ = 0, ratePushed_ = 0, pullRate_ = 0, pushRate_ = 0;
};

} // namespace r3d::mount
