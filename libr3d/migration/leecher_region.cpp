#include "migration/leecher_region.hpp"

#include <fmt/format.h>

namespace r3d::migration {

LeecherRegion::LeecherRegion(std::shared_ptr<ReadWriterAt> remote, stages::ChunkGeometry geometry)
	: ctx_(std::move(remote), geometry)
{
}

ResultMsg<std::shared_ptr<LeecherRegion>> LeecherRegion::open(std::shared_ptr<ReadWriterAt> remote, uint64_t chunk,
							      stages::PullerOptions pull)
{
	if (!remote)
		return fail(EINVAL, "leecher: no remote");
	uint64_t size = remote->size();
	if (!stages::ChunkGeometry::validChunk(chunk) || size == 0)
		return fail(EINVAL, fmt::format("leecher: region of {} bytes in chunks of {} is not usable", size, chunk));
	std::shared_ptr<LeecherRegion> r(new LeecherRegion(std::move(remote), { size, chunk }));
	cache::JournalIdentity identity{ size, chunk, "migration" };
	auto cache = cache::LocalCache::open("", identity, r->ctx_.state, false);
	if (!cache)
		return unexpectedOf(cache.error());
	r->cache_ = std::move(*cache);
	r->ctx_.cache = r->cache_->data();
	r->ctx_.journal = r->cache_->journal();
	r->puller_ = std::make_unique<stages::Puller>(r->ctx_, std::move(pull));
	stages::PusherOptions po;
	po.interval = std::chrono::hours(24 * 365);
	r->pusher_ = std::make_unique<stages::Pusher>(r->ctx_, po);
	r->synced_ = std::make_shared<stages::SyncedReadWriterAt>(r->ctx_, *r->puller_, *r->pusher_);
	r->fence_ = std::make_shared<WriteFence>(r->synced_);
	r->lock_ = std::make_shared<stages::LockableReadWriterAt>(r->fence_);
	r->lock_->lock();
	r->puller_->start();
	return r;
}

LeecherRegion::~LeecherRegion()
{
	stop();
}

void LeecherRegion::stop()
{
	if (puller_)
		puller_->stop();
}

std::shared_ptr<ReadWriterAt> LeecherRegion::top()
{
	return std::shared_ptr<ReadWriterAt>(shared_from_this(), lock_.get());
}

void LeecherRegion::markRemote(const std::vector<uint64_t> &chunks)
{
	for (uint64_t i : chunks) {
		if (i >= ctx_.state.chunks())
			continue;
		for (;;) {
			auto w = ctx_.state.waitWhilePulling(i);
			if (w.phase() == stages::ChunkPhase::Remote || ctx_.state.dropLocal(i))
				break;
			if (w.phase() != stages::ChunkPhase::Pulling && w.phase() != stages::ChunkPhase::Local)
				break; // written here: only after the handover, which ends the lists
		}
	}
	puller_->kick();
}

uint64_t LeecherRegion::missingChunks() const
{
	auto c = ctx_.state.census();
	return c.remote + c.pulling;
}

uint64_t LeecherRegion::missingBytes() const
{
	return std::min(size(), missingChunks() * chunk());
}

std::vector<uint64_t> LeecherRegion::heldChunks() const
{
	std::vector<uint64_t> held;
	for (uint64_t i = 0; i < ctx_.state.chunks(); ++i)
		if (ctx_.state.load(i).present())
			held.push_back(i);
	return held;
}

} // namespace r3d::migration
