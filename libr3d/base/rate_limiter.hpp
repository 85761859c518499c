#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

namespace r3d {

/// A token bucket over bytes: take(n) blocks until n bytes may go. Zero rate: no limit.
/// A burst of one second's worth may go at once, so a single large batch is never refused.
class RateLimiter
{
public:
	explicit RateLimiter(uint64_t bytesPerSecond = 0) : rate_(bytesPerSecond) {}

	uint64_t rate() const { return rate_; }

	void take(uint64_t bytes)
	{
		auto wait = reserve(bytes);
		if (wait.count() > 0)
			std::this_thread::sleep_for(wait);
	}

	/// Takes `bytes` without sleeping: returns how long the caller must wait before it
	/// sends more, so it can wait its own way (interruptibly, holding nothing).
	std::chrono::steady_clock::duration reserve(uint64_t bytes)
	{
		if (rate_ == 0)
			return {};
		std::chrono::steady_clock::duration wait{};
		{
			std::lock_guard lock(mutex_);
			auto now = std::chrono::steady_clock::now();
			if (last_.time_since_epoch().count() == 0)
				last_ = now;
			double refill = std::chrono::duration<double>(now - last_).count() * static_cast<double>(rate_);
			tokens_ = std::min(tokens_ + refill, static_cast<double>(rate_));
			last_ = now;
			tokens_ -= static_cast<double>(bytes);
			if (tokens_ < 0)
				wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
					std::chrono::duration<double>(-tokens_ / static_cast<double>(rate_)));
		}
		return wait;
	}

private:
	uint64_t rate_;
	std::mutex mutex_;
	double tokens_ = 0;
	std::chrono::steady_clock::time_point last_{};
};

} // namespace r3d
