#pragma once

#include "stages/chunk_stage.hpp"

namespace r3d::stages {

/// A guard for network-facing servers: passes a call on only if it covers exactly one
/// aligned chunk (the last chunk may be short), and rejects everything else before touching
/// `next`: EINVAL, or ENOSPC for writes past the end. Bounds the work and memory one request can cause.
class ChunkedReadWriterAt final : public ChunkStage
{
public:
	ChunkedReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;


private:
	Result<void> check(uint64_t offset, uint64_t length, bool forWrite) const;

};

} // namespace r3d::stages
