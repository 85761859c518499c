#include "finalize_gate.hpp"

#include <cerrno>

#include <fmt/format.h>

namespace r3mapd {

r3d::ResultMsg<void> FinalizeGate::await(const std::function<void()> &announce)
{
	{
		std::lock_guard lock(mutex_);
		if (closed_)
			return r3d::fail(ECANCELED, "the migration is stopping");
		waiting_ = true;
		answer_.reset();
	}
	// Announced without the lock: an answer may come back before announce() returns.
	announce();
	std::unique_lock lock(mutex_);
	bool ended = cv_.wait_for(lock, timeout_, [&] { return answer_.has_value() || closed_; });
	waiting_ = false;
	if (!ended)
		return r3d::fail(ETIMEDOUT, fmt::format("no AnswerFinalize within {} s of FinalizeRequested",
							 std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()));
	if (!answer_)
		return r3d::fail(ECANCELED, "the migration is stopping");
	auto got = std::move(*answer_);
	answer_.reset();
	if (!got.proceed)
		return r3d::fail(ECANCELED, got.reason.empty() ? std::string("the app refused to pause")
							   : "the app refused to pause: " + got.reason);
	return {};
}

r3d::ResultMsg<void> FinalizeGate::answer(bool proceed, std::string reason)
{
	{
		std::lock_guard lock(mutex_);
		if (!waiting_ || answer_)
			return r3d::fail(EINVAL, "no finalize is waiting for an answer (wait for FinalizeRequested)");
		answer_ = Answer{ proceed, std::move(reason) };
	}
	cv_.notify_all();
	return {};
}

void FinalizeGate::close()
{
	{
		std::lock_guard lock(mutex_);
		closed_ = true;
	}
	cv_.notify_all();
}

} // namespace r3mapd
