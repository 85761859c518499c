#include "stages/arbitrary_read_writer_at.hpp"

#include <bitset>
#include <cstring>
#include <utility>
#include <vector>

#include "stages/chunk_range.hpp"

namespace r3d::stages {

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

ArbitraryReadWriterAt::ArbitraryReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize, bool batchRuns)
	: ChunkStage(std::move(next), chunkSize), batchRuns_(batchRuns)
{
}

class ArbitraryReadWriterAt::RunLock
{
public:
	RunLock(ArbitraryReadWriterAt &stage, const Run &run) : stripes_(stage.stripes_)
	{
		if (run.count >= stripes_.size())
			held_.set();
		else
			for (uint64_t i = 0; i < run.count; ++i)
				held_.set((run.first + i) % stripes_.size());
		for (size_t i = 0; i < stripes_.size(); ++i)
			if (held_[i])
				stripes_[i].lock();
	}
	~RunLock()
	{
		for (size_t i = 0; i < stripes_.size(); ++i)
			if (held_[i])
				stripes_[i].unlock();
	}
	RunLock(const RunLock &) = delete;
	RunLock &operator=(const RunLock &) = delete;

private:
	std::array<std::mutex, 256> &stripes_;
	std::bitset<256> held_;
};

template <class Whole, class Partial>
Result<void> ArbitraryReadWriterAt::forEachRun(uint64_t offset, uint64_t length, uint64_t deviceSize, Whole &&whole,
					      Partial &&partial)
{
	Run run;
	auto flush = [&]() -> Result<void> {
		if (run.count == 0)
			return {};
		return whole(std::exchange(run, Run{}));
	};
	auto walked = forEachChunk(offset, length, chunkSize_, deviceSize, [&](const ChunkPiece &p) -> Result<void> {
		if (!p.whole()) {
			R3D_TRY(flush());
			return partial(p);
		}
		if (run.count == 0)
			run = Run{ p.index, 1, p.bufPos, p.length };
		else {
			run.count++;
			run.bytes += p.length;
		}
		return batchRuns_ ? Result<void>{} : flush();
	});
	if (!walked)
		return walked;
	return flush();
}

Result<void> ArbitraryReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	uint64_t deviceSize = size();
	R3D_TRY(checkRange(offset, buf.size(), deviceSize, false));
	return forEachRun(
		offset, buf.size(), deviceSize,
		[&](const Run &r) { return next_->readAt(buf.subspan(r.bufPos, r.bytes), r.first * chunkSize_); },
		[&](const ChunkPiece &p) -> Result<void> {
			auto chunk = scratch(p.chunkLen);
			R3D_TRY(next_->readAt(chunk, p.chunkOffset(chunkSize_)));
			std::memcpy(buf.data() + p.bufPos, chunk.data() + p.inChunk, p.length);
			return {};
		});
}

Result<void> ArbitraryReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	uint64_t deviceSize = size();
	R3D_TRY(checkRange(offset, buf.size(), deviceSize, true));
	return forEachRun(
		offset, buf.size(), deviceSize,
		[&](const Run &r) {
			RunLock lock(*this, r);
			return next_->writeAt(buf.subspan(r.bufPos, r.bytes), r.first * chunkSize_);
		},
		[&](const ChunkPiece &p) -> Result<void> {
			std::lock_guard lock(stripe(p.index));
			auto chunk = scratch(p.chunkLen);
			R3D_TRY(next_->readAt(chunk, p.chunkOffset(chunkSize_)));
			std::memcpy(chunk.data() + p.inChunk, buf.data() + p.bufPos, p.length);
			return next_->writeAt(chunk, p.chunkOffset(chunkSize_));
		});
}

Result<void> ArbitraryReadWriterAt::discard(uint64_t offset, uint64_t length, PartialOp op)
{
	uint64_t deviceSize = size();
	R3D_TRY(checkRange(offset, length, deviceSize, true));
	return forEachRun(
		offset, length, deviceSize,
		[&](const Run &r) -> Result<void> {
			RunLock lock(*this, r);
			uint64_t at = r.first * chunkSize_;
			switch (op) {
			case PartialOp::Trim:
				return next_->trim(at, r.bytes);
			case PartialOp::Zero:
				return next_->writeZeroes(at, r.bytes);
			case PartialOp::FastZero:
				return next_->writeZeroesFast(at, r.bytes);
			}
			return {};
		},
		[&](const ChunkPiece &p) -> Result<void> {
			// A partial chunk costs the same read-modify-write as writing zeros would.
			std::lock_guard lock(stripe(p.index));
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

Result<void> ArbitraryReadWriterAt::writeZeroesFast(uint64_t offset, uint64_t length)
{
	if (!next_->canFastZero())
		return ReadWriterAt::writeZeroesFast(offset, length);
	return discard(offset, length, PartialOp::FastZero);
}

} // namespace r3d::stages
