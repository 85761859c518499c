#include "stages/chunked_read_writer_at.hpp"

#include "stages/chunk_geometry.hpp"

namespace r3d::stages {

ChunkedReadWriterAt::ChunkedReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize)
	: ChunkStage(std::move(next), chunkSize)
{
}

Result<void> ChunkedReadWriterAt::check(uint64_t offset, uint64_t length, bool forWrite) const
{
	return ChunkGeometry{ size(), chunkSize_ }.checkOneChunk(offset, length, forWrite);
}

Result<void> ChunkedReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(check(offset, buf.size(), false));
	return next_->readAt(buf, offset);
}

Result<void> ChunkedReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(check(offset, buf.size(), true));
	return next_->writeAt(buf, offset);
}

Result<void> ChunkedReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(check(offset, length, true));
	return next_->trim(offset, length);
}

Result<void> ChunkedReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(check(offset, length, true));
	return next_->writeZeroes(offset, length);
}

Result<void> ChunkedReadWriterAt::writeZeroesFast(uint64_t offset, uint64_t length)
{
	R3D_TRY(check(offset, length, true));
	return next_->writeZeroesFast(offset, length);
}

} // namespace r3d::stages
