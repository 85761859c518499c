#include "stages/tracking_read_writer_at.hpp"

#include "stages/chunk_range.hpp"

namespace r3d::stages {

TrackingReadWriterAt::TrackingReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize)
	: ChunkStage(std::move(next), chunkSize), dirty_(chunkCount(size(), chunkSize))
{
}

void TrackingReadWriterAt::mark(uint64_t offset, uint64_t length)
{
	// A range outside the device was refused before anything was touched.
	if (length == 0 || !tracking_.load(std::memory_order_acquire) || !checkRange(offset, length, size(), true))
		return;
	dirty_.setRange(offset / chunkSize_, (offset + length - 1) / chunkSize_);
}

Result<void> TrackingReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	auto result = next_->writeAt(buf, offset);
	// A write that failed part-way may still have changed some chunks: mark them all.
	mark(offset, buf.size());
	return result;
}

Result<void> TrackingReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	auto result = next_->trim(offset, length);
	// A write that failed part-way may still have changed some chunks: mark them all.
	mark(offset, length);
	return result;
}

Result<void> TrackingReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	auto result = next_->writeZeroes(offset, length);
	// A write that failed part-way may still have changed some chunks: mark them all.
	mark(offset, length);
	return result;
}

Result<void> TrackingReadWriterAt::writeZeroesFast(uint64_t offset, uint64_t length)
{
	auto result = next_->writeZeroesFast(offset, length);
	// ENOTSUP means nothing was done; any other outcome may have changed the range.
	if (result || result.error().value() != ENOTSUP)
		mark(offset, length);
	return result;
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

void TrackingReadWriterAt::markDirty(uint64_t index)
{
	if (tracking_.load(std::memory_order_acquire) && index < dirty_.size())
		dirty_.set(index);
}

std::vector<uint64_t> TrackingReadWriterAt::syncDirty()
{
	return dirty_.take();
}

} // namespace r3d::stages
