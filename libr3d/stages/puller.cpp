#include "stages/puller.hpp"

#include <algorithm>
#include <memory>

#include "cache/journal.hpp"
#include "r3d/log.hpp"

namespace r3d::stages {
namespace {

constexpr size_t kMaxStreams = 8;
constexpr uint64_t kFirstWindow = 4; // chunks

auto logger()
{
	return r3d::log::get("puller");
}

} // namespace

Puller::Puller(SyncContext &ctx, PullerOptions options)
	: ctx_(ctx), options_(std::move(options)), limiter_(options_.rate)
{
	options_.workers = std::max(1u, options_.workers);
	options_.maxBatch = std::max(options_.maxBatch, ctx_.geometry.chunk);
	if (options_.order == PullOrder::Reverse)
		cursor_ = ctx_.geometry.count();
	target_ = std::max<uint64_t>(uint64_t{ 1 } << 20, options_.workers * ctx_.geometry.chunk);
}

Puller::~Puller()
{
	stop();
}

void Puller::start()
{
	std::lock_guard lock(mutex_);
	if (!workers_.empty())
		return;
	stopping_ = false;
	for (unsigned i = 0; i < options_.workers; ++i)
		workers_.emplace_back([this] { workerLoop(); });
}

void Puller::stop()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	wake_.notify_all();
	budget_.notify_all();
	for (auto &t : workers_)
		t.join();
	workers_.clear();
}

void Puller::kick()
{
	{
		// A worker between its look and its wait holds the mutex: it cannot miss the wake.
		std::lock_guard lock(mutex_);
	}
	wake_.notify_all();
}

uint64_t Puller::batchChunks() const
{
	uint64_t perWorker = target_.load(std::memory_order_relaxed) / options_.workers;
	uint64_t bytes = std::clamp(perWorker, ctx_.geometry.chunk, options_.maxBatch);
	return std::max<uint64_t>(1, bytes / ctx_.geometry.chunk);
}

uint64_t Puller::claimRun(uint64_t from, uint64_t limitChunk, uint64_t maxChunks)
{
	uint64_t n = 0;
	while (from + n <= limitChunk && n < maxChunks && ctx_.state.claimPull(from + n))
		++n;
	return n;
}

Result<void> Puller::fetch(uint64_t first, uint64_t count)
{
	uint64_t offset = ctx_.offsetOf(first), bytes = ctx_.bytesOf(first, count);
	std::unique_ptr<std::byte[]> buf(new std::byte[bytes]);
	std::span<std::byte> span(buf.get(), bytes);
	auto started = std::chrono::steady_clock::now();
	Result<void> r = ctx_.remote->readAt(span, offset);
	if (r)
		ctx_.health.succeeded();
	else
		ctx_.health.failed(r.error(), "pull");
	if (r)
		r = ctx_.cache->writeAt(span, offset);
	for (uint64_t i = first; i < first + count; ++i) {
		if (r && ctx_.journal)
			ctx_.journal->notePulled(i);
		ctx_.state.finishPull(i, r.has_value());
	}
	if (!r) {
		errors_.fetch_add(1, std::memory_order_relaxed);
		return r;
	}
	pulledBytes_.fetch_add(bytes, std::memory_order_relaxed);
	account(bytes, std::chrono::steady_clock::now() - started);
	return {};
}

void Puller::account(uint64_t bytes, std::chrono::steady_clock::duration took)
{
	std::lock_guard lock(rateMutex_);
	auto now = std::chrono::steady_clock::now();
	double seconds = std::chrono::duration<double>(took).count();
	shortestFetch_ = shortestFetch_ == 0 ? seconds : std::min(seconds, shortestFetch_ * 1.02);
	if (windowStart_.time_since_epoch().count() == 0)
		windowStart_ = now - took;
	windowBytes_ += bytes;
	double elapsed = std::chrono::duration<double>(now - windowStart_).count();
	if (elapsed >= std::max(0.05, 2 * shortestFetch_)) {
		double rate = static_cast<double>(windowBytes_) / elapsed;
		bestRate_ = std::max(rate, bestRate_ * 0.9);
		windowStart_ = now;
		windowBytes_ = 0;
		uint64_t floor = std::max<uint64_t>(uint64_t{ 1 } << 20, options_.workers * ctx_.geometry.chunk);
		uint64_t cap = options_.workers * options_.maxBatch;
		// Twice the product, and room for one more batch, so the estimate can grow.
		auto bdp = static_cast<uint64_t>(2 * bestRate_ * shortestFetch_);
		target_.store(std::clamp<uint64_t>(bdp + options_.maxBatch / 4, floor, cap), std::memory_order_relaxed);
	}
}

Result<void> Puller::demand(uint64_t first, uint64_t last)
{
	auto deadline = std::chrono::steady_clock::now() + options_.remoteTimeout;
	auto backoff = std::chrono::milliseconds(20);
	uint64_t maxChunks = std::max<uint64_t>(1, options_.maxBatch / ctx_.geometry.chunk);
	for (;;) {
		std::error_code error;
		uint64_t i = first;
		while (i <= last) {
			auto w = ctx_.state.load(i);
			if (w.present()) {
				++i;
				continue;
			}
			if (w.phase() == ChunkPhase::Pulling) {
				demandWaits_.fetch_add(1, std::memory_order_relaxed);
				ctx_.state.waitWhilePulling(i);
				continue; // it may have gone back to remote
			}
			uint64_t n = claimRun(i, last, maxChunks);
			if (n == 0)
				continue;
			demandWaits_.fetch_add(1, std::memory_order_relaxed);
			demanding_.fetch_add(1);
			auto r = fetch(i, n);
			if (demanding_.fetch_sub(1) == 1) {
				// Under the lock: a worker that just saw a demand running is waiting, not
				// about to wait, when it is told.
				{
					std::lock_guard lock(mutex_);
				}
				wake_.notify_all();
			}
			if (!r) {
				error = r.error();
				break;
			}
			demandBytes_.fetch_add(ctx_.bytesOf(i, n), std::memory_order_relaxed);
			i += n;
		}
		if (!error)
			return {};
		if (!RemoteHealth::retryable(error))
			return unexpected(error);
		if (std::chrono::steady_clock::now() + backoff > deadline) {
			logger()->warn("a read of chunks {}..{} failed: the remote stayed unreachable for {} ms ({})", first,
				       last, options_.remoteTimeout.count(), error.message());
			return unexpected(EIO);
		}
		std::this_thread::sleep_for(backoff);
		backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
	}
}

void Puller::noteRead(uint64_t first, uint64_t last)
{
	uint64_t maxWindow = std::max<uint64_t>(kFirstWindow, options_.maxWindow / ctx_.geometry.chunk);
	uint64_t chunks = ctx_.geometry.count();
	bool queued = false;
	{
		std::lock_guard lock(mutex_);
		++useClock_;
		Stream *s = nullptr;
		for (auto &st : streams_)
			if (first + 1 >= st.next && first <= st.next) {
				s = &st;
				break;
			}
		if (!s) {
			if (streams_.size() < kMaxStreams)
				s = &streams_.emplace_back();
			else
				s = &*std::min_element(streams_.begin(), streams_.end(),
						       [](const Stream &a, const Stream &b) { return a.lastUse < b.lastUse; });
			*s = Stream{ last + 1, 0, last + 1, useClock_ };
			return; // one read is not a stream yet
		}
		s->lastUse = useClock_;
		if (last + 1 <= s->next && s->window != 0)
			return; // still inside what was read last
		s->next = std::max(s->next, last + 1);
		// Like the kernel's async readahead: once the reader is within half a window of
		// what is queued, queue the next window, twice as large.
		if (s->queuedTo < s->next + s->window / 2) {
			s->window = s->window == 0 ? kFirstWindow : std::min(s->window * 2, maxWindow);
			uint64_t from = std::max(s->queuedTo, s->next);
			uint64_t to = std::min(chunks, s->next + s->window);
			if (from < to) {
				followOn_.emplace_back(from, to - 1);
				if (followOn_.size() > 64)
					followOn_.pop_front();
				queued = true;
			}
			s->queuedTo = std::max(s->queuedTo, to);
		}
	}
	if (queued)
		wake_.notify_one();
}

bool Puller::nextBatch(uint64_t &first, uint64_t &count, bool &followOn)
{
	uint64_t chunks = ctx_.geometry.count();
	uint64_t room = target_.load(std::memory_order_relaxed) - std::min(target_.load(), inFlight_.load());
	uint64_t max = std::min(batchChunks(), std::max<uint64_t>(1, room / ctx_.geometry.chunk));
	// 1. follow-on windows
	while (!followOn_.empty()) {
		auto &[a, b] = followOn_.front();
		uint64_t i = a;
		while (i <= b && ctx_.state.load(i).phase() != ChunkPhase::Remote)
			++i;
		if (i > b) {
			followOn_.pop_front();
			continue;
		}
		uint64_t n = claimRun(i, b, max);
		a = i + std::max<uint64_t>(n, 1);
		if (a > b)
			followOn_.pop_front();
		if (n > 0) {
			first = i;
			count = n;
			followOn = true;
			return true;
		}
	}
	if (!options_.background || demanding_.load() > 0)
		return false;
	followOn = false;
	// 2. the hot list, in order
	while (options_.order == PullOrder::Hot && hotIndex_ < options_.hot.size()) {
		auto &[a, b] = options_.hot[hotIndex_];
		uint64_t last = std::min(b, chunks - 1);
		uint64_t i = a;
		while (i <= last && ctx_.state.load(i).phase() != ChunkPhase::Remote)
			++i;
		if (i > last) {
			++hotIndex_;
			continue;
		}
		uint64_t n = claimRun(i, last, max);
		a = i + std::max<uint64_t>(n, 1);
		if (n > 0) {
			first = i;
			count = n;
			return true;
		}
	}
	// 3. the rest, in order; a second pass picks up chunks whose pull failed
	if (ctx_.state.census().remote == 0)
		return false;
	for (int pass = 0; pass < 2; ++pass) {
		if (options_.order == PullOrder::Reverse) {
			uint64_t j = cursor_;
			while (j > 0 && ctx_.state.load(j - 1).phase() != ChunkPhase::Remote)
				--j;
			if (j > 0) {
				uint64_t end = j - 1, start = end;
				while (start > 0 && end - start + 1 < max && ctx_.state.load(start - 1).phase() == ChunkPhase::Remote)
					--start;
				uint64_t n = claimRun(start, end, max);
				cursor_ = start;
				if (n > 0) {
					first = start;
					count = n;
					return true;
				}
				--pass; // raced with a demand pull: look again
				continue;
			}
			cursor_ = chunks;
		} else {
			uint64_t i = ctx_.state.findNext(cursor_, ChunkPhase::Remote);
			if (i < chunks) {
				uint64_t n = claimRun(i, chunks - 1, max);
				cursor_ = i + std::max<uint64_t>(n, 1);
				if (n > 0) {
					first = i;
					count = n;
					return true;
				}
				--pass;
				continue;
			}
			cursor_ = 0;
		}
		if (ctx_.state.census().remote == 0)
			break;
	}
	return false;
}

void Puller::workerLoop()
{
	auto backoff = std::chrono::milliseconds(50);
	std::unique_lock lock(mutex_);
	while (!stopping_) {
		// Room in the in-flight budget first, so claimed chunks never wait for it.
		budget_.wait(lock, [&] { return stopping_ || inFlight_.load() < target_.load(); });
		if (stopping_)
			break;
		uint64_t first = 0, count = 0;
		bool followOn = false;
		if (!nextBatch(first, count, followOn)) {
			// Nothing to pull now: sleep until a follow-on window comes, or a while, in
			// case a failed pull left chunks remote.
			wake_.wait_for(lock, std::chrono::seconds(1));
			continue;
		}
		uint64_t bytes = ctx_.bytesOf(first, count);
		inFlight_ += bytes;
		lock.unlock();
		auto r = fetch(first, count);
		if (r && followOn)
			followOnBytes_.fetch_add(bytes, std::memory_order_relaxed);
		inFlight_ -= bytes;
		budget_.notify_all();
		lock.lock();
		if (!r) {
			if (!RemoteHealth::retryable(r.error()))
				logger()->warn("pull of chunks {}..{} failed: {}", first, first + count - 1, r.error().message());
			wake_.wait_for(lock, backoff);
			backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
		} else {
			backoff = std::chrono::milliseconds(50);
			// The pull rate is paid after the fetch, when no chunk is claimed: a reader of
			// a chunk in this batch never waits for the limiter, and stop() cuts it short.
			auto until = std::chrono::steady_clock::now() + limiter_.reserve(bytes);
			budget_.wait_until(lock, until, [&] { return stopping_; });
		}
	}
}

Result<void> Puller::waitPresent(uint64_t bytes, const std::function<bool(uint64_t present)> &progress)
{
	bytes = std::min(bytes, ctx_.geometry.size);
	auto degradedSince = std::chrono::steady_clock::time_point{};
	for (;;) {
		auto c = ctx_.state.census();
		uint64_t present = std::min(ctx_.geometry.size, (c.local + c.dirty + c.pushing) * ctx_.geometry.chunk);
		if (present >= bytes)
			return {};
		if (progress && !progress(present))
			return unexpected(ECANCELED);
		auto now = std::chrono::steady_clock::now();
		if (!ctx_.health.degraded())
			degradedSince = {};
		else if (degradedSince.time_since_epoch().count() == 0)
			degradedSince = now;
		else if (now - degradedSince > options_.remoteTimeout)
			return unexpected(EIO);
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
	}
}

PullerStats Puller::stats() const
{
	PullerStats s;
	s.pulledBytes = pulledBytes_.load(std::memory_order_relaxed);
	s.demandBytes = demandBytes_.load(std::memory_order_relaxed);
	s.followOnBytes = followOnBytes_.load(std::memory_order_relaxed);
	s.demandWaits = demandWaits_.load(std::memory_order_relaxed);
	s.inFlightTarget = target_.load(std::memory_order_relaxed);
	s.batchBytes = batchChunks() * ctx_.geometry.chunk;
	s.errors = errors_.load(std::memory_order_relaxed);
	return s;
}

} // namespace r3d::stages
