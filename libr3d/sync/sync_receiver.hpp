#pragma once

// The destination side of a push: one copy DIR/NAME that generations are applied to, so a
// crash or a failed write never leaves a half-applied generation behind.
//
// Apply modes:
//  - Journal (default): a generation's chunks are appended to DIR/.NAME.r3journal as they
//    arrive; commit() fdatasyncs it, marks it committed (and fdatasyncs again), then writes
//    the chunks in place, sets the new size and fsyncs the copy, then removes the journal.
//    open() replays a committed journal and drops an uncommitted one. A reader of the copy
//    may see a generation being applied in place (never a torn one after a crash).
//  - Rename: the copy is cloned to DIR/.NAME.r3tmp (copy_file_range), the chunks written
//    there, fsynced and renamed over the copy: a reader sees the old or the new generation.
//
// Size changes: the generation names the source's new size; the copy is truncated or
// extended to it. The hashes sidecar DIR/.NAME.r3sync (generation, chunk size, the copy's
// size and mtime, its chunk hashes) spares a rehash of the whole copy at every contact; a
// sidecar that does not match the copy is ignored and the copy rehashed.
// A write error (ENOSPC, EIO) fails the generation: the copy stays at the previous one.
//
// A backend target instead (openTarget: any URI of openBackend, `r3sync serve --dest`):
// the chunks are written in place as they arrive, ascending, and commit() syncs the
// target before the generation is acknowledged. Nothing is atomic across chunks there: a
// concurrent reader of the target may see a generation partly applied (each chunk old or
// new; a chunk being written as the backend's own write allows), and a generation cut
// short leaves the chunks written so far. The hashes live in memory only: after a restart
// the receiver rehashes the target and the sender sends whatever differs, so the next
// generation repairs either. The target's size is fixed: a source larger fails the
// generation with ENOSPC; a smaller one is synced into its head, the rest left as it was.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "sync/chunk_hasher.hpp"

namespace r3d {
class ThreadPool;
}

namespace r3d::sync {

enum class ApplyMode { Journal, Rename };

struct ReceiverOptions {
	ApplyMode mode = ApplyMode::Journal;
	/// After applying, reread the changed chunks and compare their hashes (EIO on a mismatch).
	bool verify = false;
};

/// What open() found.
struct ReceiverOpenReport {
	bool replayedJournal = false;
	bool droppedJournal = false;
	bool rehashed = false;
};

class SyncReceiver
{
public:
	/// Opens (creating it empty if missing) DIR/NAME for pushes of `chunk`-byte chunks.
	static ResultMsg<std::unique_ptr<SyncReceiver>> open(const std::string &dir, const std::string &name,
							     uint64_t chunk, ReceiverOptions options, ThreadPool *pool,
							     ReceiverOpenReport *report = nullptr);
	/// A receiver writing into `target` (a backend, see above); `name` is for messages.
	static ResultMsg<std::unique_ptr<SyncReceiver>> openTarget(std::shared_ptr<ReadWriterAt> target,
								   const std::string &name, uint64_t chunk,
								   ReceiverOptions options, ThreadPool *pool,
								   ReceiverOpenReport *report = nullptr);
	~SyncReceiver();
	SyncReceiver(const SyncReceiver &) = delete;
	SyncReceiver &operator=(const SyncReceiver &) = delete;

	uint64_t generation() const { return generation_; }
	uint64_t size() const { return size_; }
	uint64_t chunk() const { return chunk_; }
	/// The copy's chunk hashes (as of the last applied generation).
	const std::vector<ChunkHash> &hashes() const { return hashes_; }
	const std::string &path() const { return path_; }

	/// Starts generation `generation` (the current + 1) of `newSize` bytes; its chunks follow.
	ResultMsg<void> begin(uint64_t generation, uint64_t newSize);
	/// One chunk of the pending generation, its full length for the new size.
	ResultMsg<void> addChunk(uint64_t index, std::span<const std::byte> data);
	/// Makes the pending generation durable and applies it. On failure the copy holds the
	/// previous generation and the pending one is dropped.
	ResultMsg<void> commit(uint64_t generation);
	/// Drops the pending generation (the sender went away).
	void abort();
	/// Chunks changed by the last commit, ascending.
	const std::vector<uint64_t> &lastChanged() const { return lastChanged_; }

private:
	SyncReceiver(std::string dir, std::string name, uint64_t chunk, ReceiverOptions options, ThreadPool *pool);
	ResultMsg<void> load(ReceiverOpenReport &report);
	ResultMsg<void> replayJournal(ReceiverOpenReport &report);
	ResultMsg<void> rehash();
	ResultMsg<void> writeSidecar();
	/// The pending generation becomes the current one: its size, hashes and changed list.
	void adoptPending();
	ResultMsg<void> applyInPlace(int fromFd, bool fromJournal);
	ResultMsg<void> verifyChunks(int fd);
	ResultMsg<void> commitTarget();
	std::string sidePath(const char *suffix) const;

	std::string dir_;
	std::string name_;
	std::string path_;
	uint64_t chunk_;
	ReceiverOptions options_;
	ThreadPool *pool_;
	UniqueFd fd_;
	std::shared_ptr<ReadWriterAt> target_; ///< instead of fd_ (openTarget)
	uint64_t generation_ = 0;
	uint64_t size_ = 0;
	std::vector<ChunkHash> hashes_;

	// The pending generation.
	bool pending_ = false;
	uint64_t pendingGeneration_ = 0;
	uint64_t pendingSize_ = 0;
	UniqueFd pendingFd_; ///< the journal, or the clone
	uint64_t journalEnd_ = 0;
	struct Entry {
		uint64_t index;
		uint64_t offset; ///< of the data in the journal
		uint64_t length;
		ChunkHash hash;
	};
	std::vector<Entry> entries_;
	std::vector<uint64_t> lastChanged_;
};

} // namespace r3d::sync
