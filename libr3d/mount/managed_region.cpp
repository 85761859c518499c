#include "mount/managed_region.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "r3d/log.hpp"
#include "stages/pipeline.hpp"

namespace r3d::mount {
namespace {

constexpr uint64_t kDefaultChunk = 64 * 1024;
constexpr size_t kMaxMetaExtents = 1u << 16;

auto logger()
{
	return r3d::log::get("managed");
}

} // namespace

const char *syncStateName(SyncState state)
{
	switch (state) {
	case SyncState::Syncing: return "syncing";
	case SyncState::Idle: return "idle";
	case SyncState::Degraded: return "degraded";
	}
	return "idle";
}

class ManagedRegion::Meta final : public nbd::MetaSource
{
public:
	explicit Meta(stages::SyncContext &ctx) : ctx_(ctx) {}

	std::vector<std::string> contexts() const override { return { "x-r3map:present", "x-r3map:dirty" }; }

	Result<std::vector<nbd::MetaExtent>> metaExtents(size_t index, uint64_t offset, uint64_t length) override
	{
		R3D_TRY(checkRange(offset, length, ctx_.geometry.size, false));
		std::vector<nbd::MetaExtent> out;
		uint64_t end = offset + length, chunk = ctx_.geometry.chunk;
		for (uint64_t pos = offset; pos < end && out.size() < kMaxMetaExtents;) {
			uint64_t i = pos / chunk;
			auto w = ctx_.state.load(i);
			uint32_t flags = (index == 0 ? w.present() : w.dirty()) ? 1 : 0;
			uint64_t next = std::min(end, (i + 1) * chunk);
			if (!out.empty() && out.back().flags == flags)
				out.back().length += next - pos;
			else
				out.push_back({ next - pos, flags });
			pos = next;
		}
		return out;
	}

private:
	stages::SyncContext &ctx_;
};

ManagedRegion::ManagedRegion(std::shared_ptr<ReadWriterAt> remote, stages::ChunkGeometry geometry,
			     ManagedOptions options)
	: options_(std::move(options)), ctx_(std::move(remote), geometry)
{
}

ResultMsg<std::shared_ptr<ManagedRegion>> ManagedRegion::open(std::shared_ptr<ReadWriterAt> remote,
							      const std::string &remoteUri, ManagedOptions options,
							      const Progress &pullFirstProgress)
{
	if (!remote)
		return fail(EINVAL, "managed: no remote");
	uint64_t size = remote->size();
	if (size == 0)
		return fail(EINVAL, "managed: the remote region is empty");
	auto chunk = stages::resolveChunk(options.chunk ? options.chunk : kDefaultChunk, remote->preferredChunk());
	if (!chunk)
		return unexpectedOf(chunk.error());
	std::vector<std::pair<uint64_t, uint64_t>> hot;
	if (options.order == stages::PullOrder::Hot) {
		auto h = readHotList(options.hotFile, *chunk, size);
		if (!h)
			return unexpectedOf(h.error());
		hot = std::move(*h);
	}
	std::shared_ptr<ManagedRegion> r(new ManagedRegion(std::move(remote), { size, *chunk }, options));
	cache::JournalIdentity identity{ size, *chunk, remoteUri };
	auto cache = cache::LocalCache::open(options.cache, identity, r->ctx_.state, options.discardLocal);
	if (!cache)
		return unexpectedOf(cache.error());
	r->cache_ = std::move(*cache);
	r->ctx_.cache = r->cache_->data();
	r->ctx_.journal = r->cache_->journal();

	const auto &replay = r->cache_->replay();
	if (replay.resumed) {
		// A remote that restarted empty (or was replaced) would make every clean chunk of
		// the cache a lie: compare a few of them with the remote before serving anything.
		std::vector<std::byte> a(*chunk), b(*chunk);
		unsigned checked = 0;
		for (uint64_t i = 0; i < r->ctx_.state.chunks() && checked < 4; ++i) {
			if (r->ctx_.state.load(i).phase() != stages::ChunkPhase::Local)
				continue;
			uint64_t len = r->ctx_.geometry.lengthOf(i);
			std::span<std::byte> sa(a.data(), len), sb(b.data(), len);
			if (auto rr = r->ctx_.cache->readAt(sa, i * *chunk); !rr)
				return fail(rr.error(), fmt::format("cache: cannot read chunk {}", i));
			if (std::all_of(sa.begin(), sa.end(), [](std::byte x) { return x == std::byte{ 0 }; }))
				continue; // zeros tell nothing about the remote
			if (auto rr = r->ctx_.remote->readAt(sb, i * *chunk); !rr)
				return fail(rr.error(), fmt::format("cannot check the remote {} against the cache: {}", remoteUri,
								    rr.error().message()));
			if (std::memcmp(sa.data(), sb.data(), len) != 0)
				return fail(EMEDIUMTYPE,
					    fmt::format("the remote {} does not hold what the cache {} pulled from it (chunk {} "
							"differs): it was restarted or replaced; start with discard-local to "
							"throw the local state away",
							remoteUri, options.cache, i));
			++checked;
		}
		logger()->info("resumed the cache {}: {} local, {} dirty chunks{}", options.cache, replay.localChunks,
			       replay.dirtyChunks,
			       replay.droppedRecords ? fmt::format(", {} torn records dropped", replay.droppedRecords) : "");
	}

	stages::PullerOptions po;
	po.workers = options.pullWorkers;
	po.order = options.order;
	po.hot = std::move(hot);
	po.rate = options.pullRate;
	po.remoteTimeout = options.remoteTimeout;
	po.background = options.background;
	r->puller_ = std::make_unique<stages::Puller>(r->ctx_, std::move(po));
	stages::PusherOptions pu;
	pu.interval = options.pushInterval;
	pu.rate = options.pushRate;
	r->pusher_ = std::make_unique<stages::Pusher>(r->ctx_, pu);
	r->synced_ = std::make_unique<stages::SyncedReadWriterAt>(r->ctx_, *r->puller_, *r->pusher_);
	r->meta_ = std::make_unique<Meta>(r->ctx_);
	r->puller_->start();
	r->pusher_->start();

	uint64_t first = options.pullFirstBytes;
	if (options.pullFirstPercent)
		first = size / 100 * options.pullFirstPercent + size % 100 * options.pullFirstPercent / 100;
	if (first) {
		if (!options.background)
			return fail(EINVAL, "pull-first needs background pulls");
		auto w = r->waitLocal(first, pullFirstProgress);
		if (!w)
			return unexpectedOf(w.error());
	}
	return r;
}

ManagedRegion::~ManagedRegion()
{
	if (puller_)
		puller_->stop();
	if (pusher_)
		pusher_->stop();
	if (ctx_.journal && ctx_.cache)
		if (auto r = ctx_.journal->checkpoint(*ctx_.cache, true); !r)
			logger()->warn("journal: the last commit failed: {}", r.error().message());
}

std::shared_ptr<ReadWriterAt> ManagedRegion::top()
{
	return std::shared_ptr<ReadWriterAt>(shared_from_this(), synced_.get());
}

std::shared_ptr<nbd::MetaSource> ManagedRegion::meta()
{
	return std::shared_ptr<nbd::MetaSource>(shared_from_this(), meta_.get());
}

ManagedStatus ManagedRegion::status() const
{
	ManagedStatus s;
	auto c = ctx_.state.census();
	uint64_t chunk = ctx_.geometry.chunk;
	s.size = ctx_.geometry.size;
	s.chunk = chunk;
	s.localBytes = std::min(s.size, (c.local + c.dirty + c.pushing) * chunk);
	s.dirtyBytes = std::min(s.size, (c.dirty + c.pushing) * chunk);
	s.pulledBytes = puller_->stats().pulledBytes;
	s.pushedBytes = pusher_->stats().pushedBytes;
	{
		std::lock_guard lock(rateMutex_);
		auto now = std::chrono::steady_clock::now();
		double dt = std::chrono::duration<double>(now - rateAt_).count();
		if (rateAt_.time_since_epoch().count() == 0) {
			rateAt_ = now;
			ratePulled_ = s.pulledBytes;
			ratePushed_ = s.pushedBytes;
		} else if (dt >= 1.0) {
			pullRate_ = static_cast<uint64_t>(static_cast<double>(s.pulledBytes - ratePulled_) / dt);
			pushRate_ = static_cast<uint64_t>(static_cast<double>(s.pushedBytes - ratePushed_) / dt);
			rateAt_ = now;
			ratePulled_ = s.pulledBytes;
			ratePushed_ = s.pushedBytes;
		}
		s.pullRate = pullRate_;
		s.pushRate = pushRate_;
	}
	if (ctx_.health.degraded()) {
		s.state = SyncState::Degraded;
		s.lastError = ctx_.health.lastError();
	} else if (c.remote + c.pulling + c.dirty + c.pushing > 0) {
		s.state = SyncState::Syncing;
	}
	s.cache = cache_->dir();
	s.resumed = cache_->replay().resumed;
	return s;
}

Counters ManagedRegion::counters() const
{
	auto s = status();
	auto p = puller_->stats();
	auto q = pusher_->stats();
	return {
		{ "local_bytes", s.localBytes },
		{ "dirty_bytes", s.dirtyBytes },
		{ "pulled_bytes", p.pulledBytes },
		{ "demand_bytes", p.demandBytes },
		{ "follow_on_bytes", p.followOnBytes },
		{ "demand_waits", p.demandWaits },
		{ "pull_errors", p.errors },
		{ "pull_in_flight_target", p.inFlightTarget },
		{ "pull_batch_bytes", p.batchBytes },
		{ "pushed_bytes", q.pushedBytes },
		{ "push_rounds", q.rounds },
		{ "push_errors", q.errors },
		{ "repushed_chunks", q.repushed },
	};
}

ResultMsg<void> ManagedRegion::waitLocal(uint64_t bytes, const Progress &progress)
{
	bytes = std::min(bytes, size());
	auto r = puller_->waitPresent(bytes, [&](uint64_t present) {
		return !progress || progress(present, bytes > present ? bytes - present : 0);
	});
	if (!r)
		return fail(r.error(), r.error() == std::errc::operation_canceled
					       ? std::string("cancelled")
					       : fmt::format("the remote stayed unreachable: {}", ctx_.health.lastError()));
	if (progress)
		progress(bytes, 0);
	return {};
}

ResultMsg<void> ManagedRegion::syncAll(const Progress &progress)
{
	if (ctx_.journal)
		if (auto r = ctx_.journal->checkpoint(*ctx_.cache, true); !r)
			return fail(r.error(), fmt::format("cache: cannot commit the journal: {}", r.error().message()));
	auto r = pusher_->pushAll(progress, options_.remoteTimeout);
	if (!r)
		return fail(r.error(), fmt::format("push to the remote failed: {}{}", r.error().message(),
						   ctx_.health.lastError().empty() ? "" : " (" + ctx_.health.lastError() + ")"));
	return {};
}

ResultMsg<void> ManagedRegion::close(bool discardDirty, const Progress &progress)
{
	std::lock_guard lock(closeMutex_);
	if (closed_)
		return {};
	puller_->stop();
	pusher_->stop();
	ResultMsg<void> result;
	auto c = ctx_.state.census();
	if (discardDirty) {
		if (c.dirty + c.pushing)
			logger()->warn("closing with {} of dirty data not pushed{}", formatSize((c.dirty + c.pushing) * chunk()),
				       cache_->persistent() ? ": the cache keeps it for its next mount"
							    : ": it is lost (memory cache)");
	} else {
		result = syncAll(progress);
	}
	if (ctx_.journal)
		if (auto r = ctx_.journal->checkpoint(*ctx_.cache, true); !r && result)
			result = fail(r.error(), fmt::format("cache: cannot commit the journal: {}", r.error().message()));
	if (result)
		closed_ = true;
	else {
		// Still usable: the caller may retry the close, or keep serving.
		puller_->start();
		pusher_->start();
	}
	return result;
}

} // namespace r3d::mount
