#include "chunks/chunked_read_writer_at.hpp"

#include "chunks/chunk_range.hpp"

namespace r3d::chunks {

ChunkedReadWriterAt::ChunkedReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize)
	: ChunkStage(std::move(next), chunkSize)
{
}

Result<void> ChunkedReadWriterAt::check(uint64_t offset, uint64_t length) const
{
	if (offset % chunkSize_ != 0)
		return unexpected(EINVAL);
	uint64_t expected = chunkLength(offset / chunkSize_, chunkSize_, size());
	if (expected == 0 || length != expected)
		return unexpected(EINVAL);
	return {};
}

Result<void> ChunkedReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(check(offset, buf.size()));
	return next_->readAt(buf, offset);
}

Result<void> ChunkedReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(check(offset, buf.size()));
	return next_->writeAt(buf, offset);
}

Result<void> ChunkedReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(check(offset, length));
	return next_->trim(offset, length);
}

Result<void> ChunkedReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(check(offset, length));
	return next_->writeZeroes(offset, length);
}

} // namespace r3d::chunks
