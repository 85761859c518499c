#include "transport/in_flight_budget.hpp"

#include <algorithm>

#include "transport/channel.hpp"

namespace r3d::transport {

void InFlightBudget::Reservation::reset()
{
	if (budget_ && bytes_ > 0)
		budget_->release(bytes_);
	budget_ = nullptr;
	bytes_ = 0;
}

std::optional<InFlightBudget::Reservation> InFlightBudget::tryReserve(uint64_t bytes, Wakeup &waiter)
{
	auto queued = std::find(waiting_.begin(), waiting_.end(), &waiter);
	bool first = waiting_.empty() || waiting_.front() == &waiter;
	if (first && (used_ == 0 || used_ + bytes <= limit_)) {
		if (queued != waiting_.end())
			waiting_.erase(queued);
		used_ += bytes;
		// The next in line may fit in what is left.
		if (!waiting_.empty())
			waiting_.front()->notify();
		return Reservation(*this, bytes);
	}
	if (queued == waiting_.end())
		waiting_.push_back(&waiter);
	return std::nullopt;
}

void InFlightBudget::leave(Wakeup &waiter)
{
	auto queued = std::find(waiting_.begin(), waiting_.end(), &waiter);
	if (queued == waiting_.end())
		return;
	bool wasFirst = queued == waiting_.begin();
	waiting_.erase(queued);
	if (wasFirst && !waiting_.empty())
		waiting_.front()->notify();
}

void InFlightBudget::release(uint64_t bytes)
{
	used_ -= bytes;
	if (!waiting_.empty())
		waiting_.front()->notify();
}

} // namespace r3d::transport
