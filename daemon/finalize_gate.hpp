#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <r3d/result.hpp>

namespace r3mapd {

/// The rendezvous of a seeder started with finalize_signal: at finalize the seeder's suspend
/// step announces FinalizeRequested and waits here for the app's AnswerFinalize; the
/// handover goes on only on a "proceed" within the timeout.
class FinalizeGate
{
public:
	explicit FinalizeGate(std::chrono::milliseconds timeout) : timeout_(timeout) {}

	/// Runs `announce`, then blocks until answer(), close() or the timeout. Fails (ECANCELED,
	/// ETIMEDOUT) with a message naming why unless the answer was to proceed.
	r3d::ResultMsg<void> await(const std::function<void()> &announce);
	/// The app's answer. Fails (EINVAL) when no await() is waiting for one.
	r3d::ResultMsg<void> answer(bool proceed, std::string reason);
	/// Ends a wait at once (the migration is going away) and every later one.
	void close();

private:
	struct Answer {
		bool proceed;
		std::string reason;
	};

	const std::chrono::milliseconds timeout_;
	std::mutex mutex_;
	std::condition_variable cv_;
	bool waiting_ = false;
	bool closed_ = false;
	std::optional<Answer> answer_;
};

} // namespace r3mapd
