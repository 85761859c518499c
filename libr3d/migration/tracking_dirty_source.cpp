#include "migration/tracking_dirty_source.hpp"

namespace r3d::migration {

TrackingDirtySource::TrackingDirtySource(std::shared_ptr<stages::TrackingReadWriterAt> tracker)
	: tracker_(std::move(tracker))
{
}

Result<void> TrackingDirtySource::start()
{
	tracker_->track();
	round_ = 0;
	return {};
}

void TrackingDirtySource::stop()
{
	tracker_->untrack();
}

Result<DirtyRound> TrackingDirtySource::take()
{
	if (!tracker_->tracking())
		return unexpected(ENOTCONN);
	DirtyRound r;
	r.round = ++round_;
	r.chunks = tracker_->syncDirty();
	r.bytes = chunkBytes(r.chunks, regionSize(), chunkSize());
	return r;
}

Result<void> TrackingDirtySource::requeue(const std::vector<uint64_t> &chunks)
{
	if (!tracker_->tracking())
		return unexpected(ENOTCONN);
	for (uint64_t c : chunks)
		tracker_->markDirty(c);
	return {};
}

} // namespace r3d::migration
