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

} // namespace r3d::migration
