#pragma once

#include <atomic>

#include "stages/bitmap.hpp"
#include "stages/chunk_stage.hpp"

namespace r3d::stages {

/// Records which chunks were written between track() and syncDirty() in a lock-free
/// bitmap. A chunk is marked after its write returned (even a failed one, which may have
/// changed part of the range), so a chunk written while syncDirty() runs shows up in this
/// list or in the next one, never in neither.
///
/// (syncDirty() rather than sync(): sync() is the ReadWriterAt flush and passes through.)
class TrackingReadWriterAt final : public ChunkStage
{
public:
	TrackingReadWriterAt(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize);

	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;

	/// Starts tracking with an empty dirty set.
	void track();
	/// Stops tracking and forgets the dirty set.
	void untrack();
	bool tracking() const { return tracking_.load(std::memory_order_acquire); }
	/// Returns the indexes of the chunks written since track() or the previous call, in
	/// ascending order, and clears them. Tracking goes on.
	std::vector<uint64_t> syncDirty();
	uint64_t dirtyCount() const { return dirty_.count(); }
	/// Marks chunk `index` dirty again while tracking (a migration round whose data was lost
	/// in flight is sent again); ignored when not tracking or past the end.
	void markDirty(uint64_t index);

private:
	void mark(uint64_t offset, uint64_t length);

	Bitmap dirty_;
	std::atomic<bool> tracking_{ false };
};

} // namespace r3d::stages
