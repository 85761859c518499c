#pragma once

// The chunk-state journal of a managed mount's cache directory: which chunks the cache holds
// and which of them are newer than the remote, so a restart with the same cache serves the
// same content, pushes what is dirty and pulls the rest.
//
// File: a 4 KiB header (identity of the region, a CRC, and the committed length), a snapshot
// (2 bits per chunk: remote, local, dirty; CRC), then 16-byte records {kind, crc, chunk}
// each with a CRC over its own position, so a torn, shifted or corrupt record is seen.
//
// Ordering, which is what makes acknowledged writes survive kill -9 and power cuts:
//  - a chunk's Dirty record is written (write(2)) before the first byte of a write lands in
//    the cache, so the page cache holds it across a kill -9;
//  - a pulled chunk's Local record is written only after the cache data was fdatasync'ed, so
//    a power cut can never leave a chunk recorded local whose data is not on disk;
//  - a pushed chunk's Local record is written after the remote's sync(), and only if the
//    chunk is still clean at that point;
//  - commit() (on every FLUSH/FUA): fdatasync the cache, append, fdatasync the journal, then
//    store the committed length in the header and fdatasync again. On replay a bad record
//    before the committed length is corruption (refused); past it, a torn tail (dropped with
//    a warning: those records described writes no FLUSH had acknowledged).
// Replay writes a fresh snapshot (write, fsync, rename, fsync the directory), and so does a
// checkpoint once the records outgrow the snapshot.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "stages/bitmap.hpp"
#include "stages/chunk_state.hpp"

namespace r3d::cache {

/// What a journal belongs to; a resume with a different identity is refused.
struct JournalIdentity {
	uint64_t size = 0;
	uint64_t chunk = 0;
	std::string remote; ///< the remote's URI, for the error message and the check
};

struct ReplayReport {
	bool resumed = false;       ///< a journal was there and was replayed
	uint64_t localChunks = 0;   ///< clean chunks the cache holds
	uint64_t dirtyChunks = 0;   ///< chunks to push
	uint64_t droppedRecords = 0; ///< torn tail records past the last commit
};

class Journal
{
public:
	/// Opens `path` (a file): creates it if missing, else replays it into `state` (all
	/// chunks remote before the call). With `discard`, an existing journal is thrown away.
	static ResultMsg<std::unique_ptr<Journal>> open(const std::string &path, const JournalIdentity &identity,
							stages::ChunkState &state, bool discard, ReplayReport &report);
	~Journal();
	Journal(const Journal &) = delete;
	Journal &operator=(const Journal &) = delete;

	/// Before a chunk's first write lands in the cache.
	Result<void> recordDirty(uint64_t index);
	/// A recordDirty() of the chunk failed and none succeeded since: the state has it dirty,
	/// the journal does not, so the next write must record it.
	bool dirtyUnrecorded(uint64_t index) const { return unrecorded_.test(index); }
	/// A pull wrote the chunk into the cache; recorded at the next checkpoint (after the
	/// cache is on disk). Call before the chunk is marked local.
	void notePulled(uint64_t index);
	/// The remote holds the chunk now (after its sync()); recorded if it is still local.
	Result<void> recordClean(uint64_t index);
	/// Makes pulled chunks' Local records safe to write (fdatasync of `cache`) and writes
	/// them; with `durable`, also commits: everything recorded so far survives a power cut.
	/// Compacts when the records have outgrown the snapshot.
	Result<void> checkpoint(ReadWriterAt &cache, bool durable);

	const std::string &path() const { return path_; }
	uint64_t bytes() const;

private:
	Journal(std::string path, stages::ChunkState &state, JournalIdentity identity);
	Result<void> append(uint32_t kind, uint64_t value);
	Result<void> writeFresh();
	Result<void> storeCommitted(uint64_t end);

	std::string path_;
	stages::ChunkState &state_;
	JournalIdentity identity_;
	UniqueFd fd_;
	mutable std::mutex mutex_;
	std::mutex checkpointMutex_;
	uint64_t end_ = 0;          ///< where the next record goes
	uint64_t recordsStart_ = 0; ///< where records begin (after the snapshot)
	stages::Bitmap pending_;    ///< pulled, not yet recorded
	stages::Bitmap unrecorded_; ///< dirty, its Dirty record failed
};

} // namespace r3d::cache
