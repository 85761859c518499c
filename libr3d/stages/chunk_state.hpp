#pragma once

// Where each chunk of a managed region is, in one 32-bit word per chunk: 64 MiB for a 1 TiB
// region at 64 KiB chunks, no per-chunk heap objects, no lock. Shared by managed mounts,
// migration and memory regions: the puller, the pusher and the synced stage all move chunks
// through these states with compare-and-swap, and wait on a word with atomic wait/notify.
//
//   remote ──claim──▶ pulling ──pulled──▶ local ──write──▶ dirty ──claim──▶ pushing ──pushed──▶ local
//      │                 └──failed──▶ remote          ▲        ▲                 │
//      └────────── whole-chunk write ─────────────────┘        └──── written ────┘
//
// A word is state (3 bits) | writers in flight (7 bits) | generation (22 bits). Every write
// raises the generation when it starts and holds a writer count until its data is in the
// cache, so the pusher claims only a chunk with no write in flight and can tell afterwards
// whether a write started while it copied the chunk: it never pushes a torn chunk and never
// marks clean a chunk written again.

#include <atomic>
#include <cstdint>
#include <memory>

namespace r3d::stages {

enum class ChunkPhase : uint32_t {
	Remote = 0,  ///< only the remote has it
	Pulling = 1, ///< being fetched into the cache; readers wait
	Local = 2,   ///< the cache has it, the same as the remote
	Dirty = 3,   ///< the cache has it, newer than the remote
	Pushing = 4, ///< being copied to the remote; a write makes it dirty again
};

const char *phaseName(ChunkPhase phase);

class ChunkState
{
public:
	/// A snapshot of one chunk's word.
	struct Word {
		uint32_t raw = 0;
		ChunkPhase phase() const { return static_cast<ChunkPhase>(raw & kPhaseMask); }
		uint32_t writers() const { return (raw >> kWriterShift) & kWriterMax; }
		uint32_t generation() const { return raw >> kGenShift; }
		/// In the cache (local, dirty or pushing).
		bool present() const { return phase() >= ChunkPhase::Local; }
		/// Newer here than on the remote (dirty or pushing).
		bool dirty() const { return phase() >= ChunkPhase::Dirty; }
	};

	explicit ChunkState(uint64_t chunks);

	uint64_t chunks() const { return chunks_; }
	Word load(uint64_t index) const { return { words_[index].load(std::memory_order_acquire) }; }

	/// Sets a chunk's phase outright (journal replay, before anyone else looks).
	void reset(uint64_t index, ChunkPhase phase);

	/// remote → pulling. True if this caller now owns the pull.
	bool claimPull(uint64_t index);
	/// pulling → local (`ok`) or back to remote, waking readers.
	void finishPull(uint64_t index, bool ok);
	/// local → remote: the cache lost the chunk's data (a memory region's pages were
	/// discarded), so the next read pulls it again. False if it was not local (a pull in
	/// flight, or dirty: those keep their state).
	bool dropLocal(uint64_t index);
	/// Blocks while the chunk is pulling; returns the word it settled on.
	Word waitWhilePulling(uint64_t index) const;

	/// The outcome of beginWrite().
	enum class Begin {
		Started,      ///< a writer is registered; call endWrite() when the data is in the cache
		NeedPull,     ///< the chunk is remote and the write does not cover it: pull it first
		WaitPull,     ///< a pull is in flight: wait for it and try again
	};
	/// Registers a writer: raises the generation and makes the chunk dirty. `whole`: the
	/// write covers the whole chunk, so a remote chunk needs no pull. `wasClean` says whether
	/// the chunk was not dirty before (the journal must record it dirty before the data lands).
	Begin beginWrite(uint64_t index, bool whole, bool &wasClean);
	/// The writer's data is in the cache.
	void endWrite(uint64_t index);

	/// dirty with no writer in flight → pushing. Returns the generation claimed, or -1.
	int64_t claimPush(uint64_t index);
	/// Still pushing at `generation`, with no write started since the claim.
	bool unchangedSince(uint64_t index, uint32_t generation) const;
	/// pushing at `generation` → local (`ok`) or back to dirty. False if a write came in
	/// (the chunk is dirty at a newer generation and stays so).
	bool finishPush(uint64_t index, uint32_t generation, bool ok);

	/// Chunks in each phase, kept as counters by every transition (cheap to poll).
	struct Census {
		uint64_t remote = 0, pulling = 0, local = 0, dirty = 0, pushing = 0;
	};
	Census census() const;
	/// The first chunk at or after `from` whose phase is `phase`, or chunks().
	uint64_t findNext(uint64_t from, ChunkPhase phase) const;

private:
	static constexpr uint32_t kPhaseMask = 0x7;
	static constexpr uint32_t kWriterShift = 3;
	static constexpr uint32_t kWriterMax = 0x7f;
	static constexpr uint32_t kGenShift = 10;

	static uint32_t make(ChunkPhase phase, uint32_t writers, uint32_t generation)
	{
		return static_cast<uint32_t>(phase) | (writers << kWriterShift) | (generation << kGenShift);
	}

	void moved(ChunkPhase from, ChunkPhase to)
	{
		if (from == to)
			return;
		counts_[static_cast<uint32_t>(from)].fetch_sub(1, std::memory_order_relaxed);
		counts_[static_cast<uint32_t>(to)].fetch_add(1, std::memory_order_relaxed);
	}

	uint64_t chunks_;
	std::unique_ptr<std::atomic<uint32_t>[]> words_;
	std::atomic<int64_t> counts_[5] = {};
};

} // namespace r3d::stages
