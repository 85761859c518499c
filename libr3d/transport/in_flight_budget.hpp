#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace r3d::transport {

class Wakeup;

/// Bytes that requests in flight may hold across all connections of a server (payloads
/// read from clients, read buffers until their reply is sent). A reader that cannot
/// reserve waits in line, first come first served. Used on the network thread only.
class InFlightBudget
{
public:
	/// What one reservation holds; gives it back when destroyed.
	class Reservation
	{
	public:
		Reservation() = default;
		Reservation(InFlightBudget &budget, uint64_t bytes) : budget_(&budget), bytes_(bytes) {}
		Reservation(Reservation &&o) noexcept
			: budget_(std::exchange(o.budget_, nullptr)), bytes_(std::exchange(o.bytes_, 0))
		{
		}
		Reservation &operator=(Reservation &&o) noexcept
		{
			if (this != &o) {
				reset();
				budget_ = std::exchange(o.budget_, nullptr);
				bytes_ = std::exchange(o.bytes_, 0);
			}
			return *this;
		}
		~Reservation() { reset(); }
		uint64_t bytes() const { return bytes_; }
		void reset();

	private:
		InFlightBudget *budget_ = nullptr;
		uint64_t bytes_ = 0;
	};

	explicit InFlightBudget(uint64_t limit) : limit_(limit) {}

	/// Reserves `bytes` if they fit (or nothing is reserved, so one request larger than the
	/// limit still goes through) and nobody waits ahead of `waiter`. Otherwise returns
	/// nothing and puts `waiter` in line: it is notified when bytes come back.
	std::optional<Reservation> tryReserve(uint64_t bytes, Wakeup &waiter);
	/// Takes `waiter` out of the line (its reader is closing).
	void leave(Wakeup &waiter);

	uint64_t used() const { return used_; }
	uint64_t limit() const { return limit_; }

private:
	void release(uint64_t bytes);

	uint64_t limit_;
	uint64_t used_ = 0;
	std::deque<Wakeup *> waiting_;
};

} // namespace r3d::transport
