#pragma once

#include <array>
#include <mutex>

#include "stages/chunk_stage.hpp"

namespace r3d::stages {

/// Accepts any offset and length and talks to `next` in whole chunks only: the unaligned
/// head and tail are read-modify-written through a per-thread scratch chunk, whole aligned
/// chunks go straight through without a copy. Partial writes to one chunk are serialized
/// by a striped lock so two concurrent RMWs of disjoint bytes cannot undo each other.
class ArbitraryReadWriterAt final : public ChunkStage
{
public:
	/// `batchRuns`: whole chunks in a row go to `next` as one call (for stores that batch
	/// them: Redis pipelines, S3 parallel requests); otherwise one call per chunk, for a
	/// `next` that takes single chunks only (a ChunkedReadWriterAt guard).
	ArbitraryReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize, bool batchRuns = false);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;
	/// Any offset and length: that is what this stage is for.
	uint64_t preferredChunk() const override { return 0; }

private:
	enum class PartialOp { Trim, Zero, FastZero };
	/// Whole chunks [first, first + count), `bytes` long, at `bufPos` of the caller's range.
	struct Run {
		uint64_t first = 0;
		uint64_t count = 0;
		uint64_t bufPos = 0;
		uint64_t bytes = 0;
	};
	/// Holds the stripes of a run's chunks, taken in ascending order (no deadlock with
	/// another run; single-chunk holders take one stripe only).
	class RunLock;

	Result<void> discard(uint64_t offset, uint64_t length, PartialOp op);
	/// Walks the range: whole(Run) for runs of whole chunks (one chunk each unless
	/// batchRuns_), partial(ChunkPiece) for an unaligned head or tail.
	template <class Whole, class Partial>
	Result<void> forEachRun(uint64_t offset, uint64_t length, uint64_t deviceSize, Whole &&whole, Partial &&partial);
	std::mutex &stripe(uint64_t chunkIndex) { return stripes_[chunkIndex % stripes_.size()]; }

	bool batchRuns_;
	std::array<std::mutex, 256> stripes_;
};

} // namespace r3d::stages
