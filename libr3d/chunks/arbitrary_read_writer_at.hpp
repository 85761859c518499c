#pragma once

#include <array>
#include <mutex>

#include "chunks/chunk_stage.hpp"

namespace r3d::chunks {

/// Accepts any offset and length and talks to `next` in whole chunks only: the unaligned
/// head and tail are read-modify-written through a per-thread scratch chunk, whole aligned
/// chunks go straight through without a copy. Partial writes to one chunk are serialized
/// by a striped lock so two concurrent RMWs of disjoint bytes cannot undo each other.
class ArbitraryReadWriterAt final : public ChunkStage
{
public:
	ArbitraryReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;


private:
	enum class PartialOp { Trim, Zero };
	Result<void> discard(uint64_t offset, uint64_t length, PartialOp op);
	std::mutex &stripe(uint64_t chunkIndex) { return stripes_[chunkIndex % stripes_.size()]; }

	std::array<std::mutex, 256> stripes_;
};

} // namespace r3d::chunks
