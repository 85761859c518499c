#include "chunks/tracking_read_writer_at.hpp"

#include "chunks/chunk_range.hpp"

namespace r3d::chunks {

TrackingReadWriterAt::TrackingReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize)
	: ChunkStage(std::move(next), chunkSize), dirty_(chunkCount(size(), chunkSize))
{
}

void TrackingReadWriterAt::mark(uint64_t offset, uint64_t length)
{
	if (length == 0 || !tracking_.load(std::memory_order_acquire))
		return;
	dirty_.setRange(offset / chunkSize_, (offset + length - 1) / chunkSize_);
}

Result<void> TrackingReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(next_->writeAt(buf, offset));
	mark(offset, buf.size());
	return {};
}

Result<void> TrackingReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(next_->trim(offset, length));
	mark(offset, length);
	return {};
}

Result<void> TrackingReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(next_->writeZeroes(offset, length));
	mark(offset, length);
	return {};
}

void TrackingReadWriterAt::track()
{
	dirty_.clearAll();
	tracking_.store(true, std::memory_order_release);
}

void TrackingReadWriterAt::untrack()
{
	tracking_.store(false, std::memory_order_release);
	dirty_.clearAll();
}

std::vector<uint64_t> TrackingReadWriterAt::syncDirty()
{
	return dirty_.take();
}

} // namespace r3d::chunks
