#include "chunks/arbitrary_read_writer_at.hpp"

#include <cstring>
#include <vector>

#include "chunks/chunk_range.hpp"

namespace r3d::chunks {

namespace {

// One scratch chunk per thread: the hot path allocates only the first time a thread sees a
// larger chunk size.
std::span<std::byte> scratch(uint64_t length)
{
	thread_local std::vector<std::byte> buffer;
	if (buffer.size() < length)
		buffer.resize(length);
	return { buffer.data(), static_cast<size_t>(length) };
}

} // namespace

ArbitraryReadWriterAt::ArbitraryReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize)
	: ChunkStage(std::move(next), chunkSize)
{
}

Result<void> ArbitraryReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	uint64_t deviceSize = size();
	R3D_TRY(checkRange(offset, buf.size(), deviceSize, false));
	return forEachChunk(offset, buf.size(), chunkSize_, deviceSize, [&](const ChunkPiece &p) -> Result<void> {
		auto dst = buf.subspan(p.bufPos, p.length);
		if (p.whole())
			return next_->readAt(dst, p.chunkOffset(chunkSize_));
		auto chunk = scratch(p.chunkLen);
		R3D_TRY(next_->readAt(chunk, p.chunkOffset(chunkSize_)));
		std::memcpy(dst.data(), chunk.data() + p.inChunk, p.length);
		return {};
	});
}

Result<void> ArbitraryReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	uint64_t deviceSize = size();
	R3D_TRY(checkRange(offset, buf.size(), deviceSize, true));
	return forEachChunk(offset, buf.size(), chunkSize_, deviceSize, [&](const ChunkPiece &p) -> Result<void> {
		auto src = buf.subspan(p.bufPos, p.length);
		std::lock_guard lock(stripe(p.index));
		if (p.whole())
			return next_->writeAt(src, p.chunkOffset(chunkSize_));
		auto chunk = scratch(p.chunkLen);
		R3D_TRY(next_->readAt(chunk, p.chunkOffset(chunkSize_)));
		std::memcpy(chunk.data() + p.inChunk, src.data(), p.length);
		return next_->writeAt(chunk, p.chunkOffset(chunkSize_));
	});
}

Result<void> ArbitraryReadWriterAt::discard(uint64_t offset, uint64_t length, PartialOp op)
{
	uint64_t deviceSize = size();
	R3D_TRY(checkRange(offset, length, deviceSize, true));
	return forEachChunk(offset, length, chunkSize_, deviceSize, [&](const ChunkPiece &p) -> Result<void> {
		std::lock_guard lock(stripe(p.index));
		if (p.whole()) {
			return op == PartialOp::Trim ? next_->trim(p.chunkOffset(chunkSize_), p.chunkLen)
						     : next_->writeZeroes(p.chunkOffset(chunkSize_), p.chunkLen);
		}
		auto chunk = scratch(p.chunkLen);
		R3D_TRY(next_->readAt(chunk, p.chunkOffset(chunkSize_)));
		std::memset(chunk.data() + p.inChunk, 0, p.length);
		return next_->writeAt(chunk, p.chunkOffset(chunkSize_));
	});
}

Result<void> ArbitraryReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	return discard(offset, length, PartialOp::Trim);
}

Result<void> ArbitraryReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	return discard(offset, length, PartialOp::Zero);
}

} // namespace r3d::chunks
