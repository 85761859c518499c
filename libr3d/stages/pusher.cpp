#include "stages/pusher.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "cache/journal.hpp"
#include "r3d/log.hpp"

namespace r3d::stages {
namespace {

auto logger()
{
	return r3d::log::get("pusher");
}

struct Claim {
	uint64_t index;
	uint32_t generation;
	bool sent = false;
	bool dropped = false; ///< written again while copied: stays dirty
};

} // namespace

Pusher::Pusher(SyncContext &ctx, PusherOptions options)
	: ctx_(ctx), options_(options), limiter_(options.rate), hint_(ctx.geometry.count())
{
	options_.maxBatch = std::max(options_.maxBatch, ctx_.geometry.chunk);
	// After a journal replay the dirty chunks are known only to the state.
	for (uint64_t i = 0; i < ctx_.state.chunks(); ++i)
		if (ctx_.state.load(i).dirty())
			hint_.set(i);
}

Pusher::~Pusher()
{
	stop();
}

void Pusher::start()
{
	std::lock_guard lock(mutex_);
	if (thread_.joinable())
		return;
	stopping_ = false;
	thread_ = std::thread([this] { loop(); });
}

void Pusher::stop()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	wake_.notify_all();
	if (thread_.joinable())
		thread_.join();
}

void Pusher::kick()
{
	{
		std::lock_guard lock(mutex_);
		kicked_ = true;
	}
	wake_.notify_all();
}

void Pusher::loop()
{
	auto backoff = std::chrono::milliseconds(100);
	auto wait = options_.interval;
	std::unique_lock lock(mutex_);
	while (!stopping_) {
		wake_.wait_for(lock, wait, [&] { return stopping_ || kicked_; });
		if (stopping_)
			break;
		kicked_ = false;
		lock.unlock();
		auto r = round(nullptr, true);
		lock.lock();
		if (!r && r.error() == std::errc::operation_canceled)
			break; // stopped in a rate wait: the chunks are dirty again
		if (r) {
			backoff = std::chrono::milliseconds(100);
			wait = options_.interval;
		} else {
			wait = std::min(backoff, options_.interval);
			backoff = std::min(backoff * 2, std::max(options_.interval, std::chrono::milliseconds(1000)));
		}
	}
}

Result<uint64_t> Pusher::round(const std::function<bool(uint64_t pushed, uint64_t left)> &progress,
			       bool background)
{
	std::lock_guard one(roundMutex_);
	rounds_.fetch_add(1, std::memory_order_relaxed);
	std::vector<Claim> claims;
	for (uint64_t i : hint_.take()) {
		int64_t g = ctx_.state.claimPush(i);
		if (g >= 0)
			claims.push_back({ i, static_cast<uint32_t>(g) });
		else if (ctx_.state.load(i).dirty())
			hint_.set(i); // a write is in flight: next round
	}
	if (claims.empty())
		return uint64_t{ 0 };

	uint64_t maxChunks = std::max<uint64_t>(1, options_.maxBatch / ctx_.geometry.chunk);
	uint64_t pushed = 0;
	auto giveBack = [&](std::error_code ec, const char *what) {
		for (auto &c : claims)
			if (!c.dropped) {
				ctx_.state.finishPush(c.index, c.generation, false);
				hint_.set(c.index);
			}
		if (what) {
			errors_.fetch_add(1, std::memory_order_relaxed);
			ctx_.health.failed(ec, what);
		}
		return unexpected(ec);
	};
	// The rate limit's wait; stop() ends it for a background round, which then gives back.
	auto paced = [&](uint64_t bytes) {
		auto wait = limiter_.reserve(bytes);
		if (wait.count() <= 0)
			return true;
		if (!background) {
			std::this_thread::sleep_for(wait);
			return true;
		}
		std::unique_lock lock(mutex_);
		return !wake_.wait_for(lock, wait, [&] { return stopping_; });
	};
	std::unique_ptr<std::byte[]> buf(new std::byte[maxChunks * ctx_.geometry.chunk]);
	for (size_t k = 0; k < claims.size();) {
		// A run of contiguous claims, up to a batch.
		size_t e = k + 1;
		while (e < claims.size() && e - k < maxChunks && claims[e].index == claims[e - 1].index + 1)
			++e;
		uint64_t first = claims[k].index, count = e - k;
		uint64_t offset = ctx_.offsetOf(first), bytes = ctx_.bytesOf(first, count);
		std::span<std::byte> span(buf.get(), bytes);
		if (auto r = ctx_.cache->readAt(span, offset); !r)
			return giveBack(r.error(), "push (reading the cache)");
		// Send the sub-runs nobody wrote to while they were copied.
		for (size_t a = k; a < e;) {
			if (!ctx_.state.unchangedSince(claims[a].index, claims[a].generation)) {
				claims[a].dropped = true;
				hint_.set(claims[a].index);
				repushed_.fetch_add(1, std::memory_order_relaxed);
				++a;
				continue;
			}
			size_t b = a + 1;
			while (b < e && ctx_.state.unchangedSince(claims[b].index, claims[b].generation))
				++b;
			uint64_t subOffset = ctx_.offsetOf(claims[a].index);
			uint64_t subBytes = ctx_.bytesOf(claims[a].index, b - a);
			auto data = span.subspan(subOffset - offset, subBytes);
			// Zeroed or discarded chunks (mkfs discards the whole device) go as a zeroing.
			bool zero = std::all_of(data.begin(), data.end(), [](std::byte x) { return x == std::byte{ 0 }; });
			if (!zero && !paced(subBytes))
				return giveBack(std::make_error_code(std::errc::operation_canceled), nullptr);
			auto r = zero ? ctx_.remote->writeZeroes(subOffset, subBytes) : ctx_.remote->writeAt(data, subOffset);
			if (!r)
				return giveBack(r.error(), "push");
			for (size_t c = a; c < b; ++c)
				claims[c].sent = true;
			pushed += subBytes;
			a = b;
		}
		k = e;
		if (progress) {
			auto census = ctx_.state.census();
			if (!progress(pushedBytes_.load() + pushed, (census.dirty + census.pushing) * ctx_.geometry.chunk))
				return giveBack(std::make_error_code(std::errc::operation_canceled), "push");
		}
	}
	if (auto r = ctx_.remote->sync(); !r)
		return giveBack(r.error(), "push (remote sync)");
	ctx_.health.succeeded();
	for (auto &c : claims) {
		if (c.dropped)
			continue;
		if (ctx_.state.finishPush(c.index, c.generation, true)) {
			if (ctx_.journal)
				if (auto r = ctx_.journal->recordClean(c.index); !r)
					logger()->warn("journal: cannot record chunk {} clean: {}", c.index, r.error().message());
		} else {
			hint_.set(c.index);
			repushed_.fetch_add(1, std::memory_order_relaxed);
		}
	}
	pushedBytes_.fetch_add(pushed, std::memory_order_relaxed);
	return pushed;
}

Result<void> Pusher::pushAll(const std::function<bool(uint64_t pushed, uint64_t left)> &progress,
			     std::chrono::milliseconds timeout)
{
	auto failingSince = std::chrono::steady_clock::time_point{};
	auto backoff = std::chrono::milliseconds(50);
	for (;;) {
		auto r = round(progress);
		auto census = ctx_.state.census();
		if (r) {
			failingSince = {};
			backoff = std::chrono::milliseconds(50);
			if (census.dirty + census.pushing == 0)
				return {};
			if (*r == 0) // writes in flight hold their chunks: let them land
				std::this_thread::sleep_for(std::chrono::milliseconds(5));
			continue;
		}
		if (r.error() == std::errc::operation_canceled || !RemoteHealth::retryable(r.error()))
			return unexpected(r.error());
		auto now = std::chrono::steady_clock::now();
		if (failingSince.time_since_epoch().count() == 0)
			failingSince = now;
		else if (now - failingSince > timeout)
			return unexpected(r.error());
		logger()->info("push failed ({}); {} dirty chunks wait, retrying", r.error().message(), census.dirty);
		if (progress && !progress(pushedBytes_.load(), census.dirty * ctx_.geometry.chunk))
			return unexpected(ECANCELED);
		std::this_thread::sleep_for(backoff);
		backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
	}
}

PusherStats Pusher::stats() const
{
	return { pushedBytes_.load(std::memory_order_relaxed), rounds_.load(std::memory_order_relaxed),
		 errors_.load(std::memory_order_relaxed), repushed_.load(std::memory_order_relaxed) };
}

} // namespace r3d::stages
