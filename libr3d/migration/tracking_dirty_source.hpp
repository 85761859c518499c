#pragma once

// The dirty source of a block region: the chunks TrackingReadWriterAt saw written. The
// tracker sits in the seeder's pipeline above everything that writes (NBD export or mount),
// so every acknowledged write is marked after it returned; its bitmap is taken word by word
// with an atomic exchange, so a write racing with take() is in this round or the next.

#include <memory>

#include "migration/dirty_source.hpp"
#include "stages/tracking_read_writer_at.hpp"

namespace r3d::migration {

class TrackingDirtySource final : public DirtySource
{
public:
	explicit TrackingDirtySource(std::shared_ptr<stages::TrackingReadWriterAt> tracker);

	uint64_t regionSize() const override { return tracker_->size(); }
	uint64_t chunkSize() const override { return tracker_->chunkSize(); }
	Result<void> start() override;
	void stop() override;
	bool started() const override { return tracker_->tracking(); }
	Result<DirtyRound> take() override;
	Result<void> requeue(const std::vector<uint64_t> &chunks) override;
	uint64_t pendingChunks() const override { return tracker_->dirtyCount(); }
	uint64_t round() const override { return round_; }

private:
	std::shared_ptr<stages::TrackingReadWriterAt> tracker_;
	uint64_t round_ = 0;
};

} // namespace r3d::migration
