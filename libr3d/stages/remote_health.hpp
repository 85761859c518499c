#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <system_error>

namespace r3d::stages {

/// Whether the remote answers, as the puller and the pusher see it: degraded from the first
/// failed call until the next one that succeeds. Shown as the mount's Degraded state.
class RemoteHealth
{
public:
	void succeeded()
	{
		if (degraded_.exchange(false, std::memory_order_acq_rel)) {
			std::lock_guard lock(mutex_);
			lastError_.clear();
		}
	}
	void failed(const std::error_code &ec, const char *what)
	{
		failures_.fetch_add(1, std::memory_order_relaxed);
		std::lock_guard lock(mutex_);
		lastError_ = std::string(what) + ": " + ec.message();
		degraded_.store(true, std::memory_order_release);
	}
	bool degraded() const { return degraded_.load(std::memory_order_acquire); }
	uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
	std::string lastError() const
	{
		std::lock_guard lock(mutex_);
		return lastError_;
	}

	/// Errors that mean "try again later" (the link, the remote being down) rather than a
	/// request the remote will never take.
	static bool retryable(const std::error_code &ec)
	{
		switch (ec.value()) {
		case EINVAL:
		case ENOSPC:
		case EROFS:
		case EPERM:
		case EACCES:
		case EFBIG:
		case ENOTSUP:
		case ECANCELED: // the caller is going away (a region being unmapped)
			return false;
		default:
			return true;
		}
	}

private:
	std::atomic<bool> degraded_{ false };
	std::atomic<uint64_t> failures_{ 0 };
	mutable std::mutex mutex_;
	std::string lastError_;
};

} // namespace r3d::stages
