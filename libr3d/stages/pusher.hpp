#pragma once

// Writes dirty chunks back to the remote: on an interval, soon after a FLUSH or FUA write
// (kick()), and all of them on pushAll() (Sync(), unmount, SIGTERM). Contiguous dirty chunks
// go as one backend call. A chunk is claimed only while no write to it is in flight, copied,
// and checked unchanged before it is sent; it becomes clean only if no write came in until
// the remote's sync() returned, so no write is ever lost or pushed torn. Backend errors are
// retried with backoff; the remote's health shows them.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include <r3d/result.hpp>

#include "base/rate_limiter.hpp"
#include "stages/bitmap.hpp"
#include "stages/sync_context.hpp"

namespace r3d::stages {

struct PusherOptions {
	std::chrono::milliseconds interval{ 5000 };
	uint64_t rate = 0; ///< bytes per second; 0: unlimited
	uint64_t maxBatch = 8u << 20;
};

struct PusherStats {
	uint64_t pushedBytes = 0;
	uint64_t rounds = 0;
	uint64_t errors = 0;
	uint64_t repushed = 0; ///< chunks written again while they were pushed
};

class Pusher
{
public:
	Pusher(SyncContext &ctx, PusherOptions options);
	~Pusher();
	Pusher(const Pusher &) = delete;
	Pusher &operator=(const Pusher &) = delete;

	void start();
	void stop();

	/// A chunk became dirty (from clean).
	void noteDirty(uint64_t index) { hint_.set(index); }
	/// Push soon (after a FLUSH or FUA write), without waiting for it.
	void kick();
	/// Pushes until nothing is dirty. `progress(pushed, dirtyLeft)` is called after each
	/// batch and may cancel (false → ECANCELED). Gives up with the last error once the
	/// remote stayed unreachable for `timeout`.
	Result<void> pushAll(const std::function<bool(uint64_t pushed, uint64_t left)> &progress,
			     std::chrono::milliseconds timeout);

	PusherStats stats() const;

private:
	void loop();
	/// One pass over the dirty chunks known now; the bytes pushed. A `background` round
	/// (the loop's) gives its chunks back, still dirty, when stop() comes during a rate wait.
	Result<uint64_t> round(const std::function<bool(uint64_t pushed, uint64_t left)> &progress,
			       bool background = false);
	Result<void> pushRun(uint64_t first, uint64_t count, std::vector<std::pair<uint64_t, uint32_t>> &pushed);

	SyncContext &ctx_;
	PusherOptions options_;
	RateLimiter limiter_;
	Bitmap hint_; ///< chunks that may be dirty
	std::mutex roundMutex_;

	std::mutex mutex_;
	std::condition_variable wake_;
	bool stopping_ = false;
	bool kicked_ = false;
	std::thread thread_;

	std::atomic<uint64_t> pushedBytes_{ 0 }, rounds_{ 0 }, errors_{ 0 }, repushed_{ 0 };
};

} // namespace r3d::stages
