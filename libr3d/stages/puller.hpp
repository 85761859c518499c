#pragma once

// The one place chunks come from the remote into the cache, for managed mounts, migration
// and memory regions alike. Three priorities:
//   1. demand: a read (or a partial write) of a remote chunk pulls it on the caller's thread
//      at once, coalesced with a pull of the same chunk already in flight;
//   2. follow-on: sequential reads are detected per stream, like the kernel's readahead, and
//      a window ahead of them, doubling while the stream goes on, is queued for the workers;
//   3. background: the rest, in the configured order (linear, reverse, or a hot list first).
//      No background batch starts while a demand pull is fetching: on a thin link the
//      reader would queue behind it.
// Workers fetch runs of contiguous remote chunks as one backend call. How many bytes are in
// flight follows the measured bandwidth-delay product (twice the best recent delivery rate
// times the shortest recent fetch time), so a long link gets deep queues and a short one
// small batches that keep demand reads quick.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <r3d/result.hpp>

#include "base/rate_limiter.hpp"
#include "stages/sync_context.hpp"

namespace r3d::stages {

enum class PullOrder { Linear, Reverse, Hot };

struct PullerOptions {
	unsigned workers = 4;
	PullOrder order = PullOrder::Linear;
	/// For PullOrder::Hot: chunk ranges [first, last] pulled first, in this order; the rest
	/// follows linearly.
	std::vector<std::pair<uint64_t, uint64_t>> hot;
	/// Background and follow-on pulls, bytes per second; 0: unlimited. Demand pulls are
	/// never held back.
	uint64_t rate = 0;
	/// How long a demand pull keeps retrying an unreachable remote before it fails with EIO.
	std::chrono::milliseconds remoteTimeout{ 60000 };
	/// Largest run fetched in one backend call.
	uint64_t maxBatch = 8u << 20;
	/// Largest readahead window of a sequential stream.
	uint64_t maxWindow = 16u << 20;
	/// false: only demand and follow-on pulls (a cache that fills as it is read).
	bool background = true;
};

struct PullerStats {
	uint64_t pulledBytes = 0;  ///< fetched from the remote, every priority
	uint64_t demandBytes = 0;  ///< of which on demand
	uint64_t followOnBytes = 0;
	uint64_t demandWaits = 0;  ///< reads that waited for a pull (theirs or one in flight)
	uint64_t inFlightTarget = 0;
	uint64_t batchBytes = 0;   ///< the batch size now in use
	uint64_t errors = 0;
};

class Puller
{
public:
	Puller(SyncContext &ctx, PullerOptions options);
	~Puller();
	Puller(const Puller &) = delete;
	Puller &operator=(const Puller &) = delete;

	/// Starts the workers (background and follow-on pulls).
	void start();
	/// Stops and joins them; demand pulls still work.
	void stop();

	/// Makes chunks [first, last] present in the cache: pulls the remote ones on this thread,
	/// waits for ones in flight. Fails with EIO once the remote stayed unreachable for
	/// remoteTimeout.
	Result<void> demand(uint64_t first, uint64_t last);
	/// Chunks became remote again (a migration round's dirty list): wake the idle workers
	/// now instead of at their next look.
	void kick();
	/// A read of [first, last] (present or not): feeds follow-on detection.
	void noteRead(uint64_t first, uint64_t last);

	/// Blocks until `bytes` of the region are present (or everything is), reporting
	/// progress; fails when the remote stays unreachable for remoteTimeout or `cancel`.
	Result<void> waitPresent(uint64_t bytes, const std::function<bool(uint64_t present)> &progress);

	PullerStats stats() const;

private:
	struct Stream {
		uint64_t next = 0;   ///< the chunk a sequential read would start at
		uint64_t window = 0; ///< chunks queued ahead
		uint64_t queuedTo = 0;
		uint64_t lastUse = 0;
	};

	void workerLoop();
	/// Claims a run of remote chunks to fetch; false when there is nothing to do now.
	bool nextBatch(uint64_t &first, uint64_t &count, bool &followOn);
	uint64_t claimRun(uint64_t from, uint64_t limitChunk, uint64_t maxChunks);
	/// Fetches claimed chunks [first, first+count) and marks them local (or remote again).
	Result<void> fetch(uint64_t first, uint64_t count);
	uint64_t batchChunks() const;
	void account(uint64_t bytes, std::chrono::steady_clock::duration took);

	SyncContext &ctx_;
	PullerOptions options_;
	RateLimiter limiter_;

	std::mutex mutex_;
	std::condition_variable wake_;
	bool stopping_ = false;
	std::deque<std::pair<uint64_t, uint64_t>> followOn_; ///< chunk ranges [first, last]
	std::vector<Stream> streams_;
	uint64_t useClock_ = 0;
	uint64_t cursor_ = 0;   ///< background position (linear: next; reverse: one past next)
	size_t hotIndex_ = 0;
	std::vector<std::thread> workers_;

	// The bandwidth-delay estimate.
	mutable std::mutex rateMutex_;
	std::chrono::steady_clock::time_point windowStart_{};
	uint64_t windowBytes_ = 0;
	double bestRate_ = 0;     ///< bytes/s, decaying
	double shortestFetch_ = 0; ///< seconds, decaying upwards
	std::atomic<uint64_t> inFlight_{ 0 };
	std::atomic<uint64_t> target_{ 4u << 20 };
	std::condition_variable_any budget_;

	std::atomic<unsigned> demanding_{ 0 }; ///< demand fetches running now

	std::atomic<uint64_t> pulledBytes_{ 0 }, demandBytes_{ 0 }, followOnBytes_{ 0 }, demandWaits_{ 0 }, errors_{ 0 };
};

} // namespace r3d::stages
