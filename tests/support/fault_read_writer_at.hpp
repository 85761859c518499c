#pragma once

// The one stage double for faults: put it below the stage under test to make reads and/or
// writes wait until released (all of them, those at one offset, or only the first),
// take longer, or fail after N calls with an errno. Configure it before I/O starts; the
// release and wait calls are for the test's own thread. No Catch2 here: the fuzz targets
// use it too.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "stages/forwarding_read_writer_at.hpp"

namespace r3test {

class FaultReadWriterAt final : public r3d::stages::ForwardingReadWriterAt
{
public:
	/// Which calls a fault applies to.
	enum Ops : unsigned { kReads = 1, kWrites = 2, kReadsAndWrites = 3 };

	using ForwardingReadWriterAt::ForwardingReadWriterAt;

	/// Matching calls (those at `offset` only, if given) wait until release().
	FaultReadWriterAt &hold(Ops ops, std::optional<uint64_t> offset = std::nullopt)
	{
		holdOps_ = ops;
		holdOffset_ = offset;
		return blocking();
	}
	/// Only the first matching call waits until release(): a peer that hangs once.
	FaultReadWriterAt &hangOnce(Ops ops)
	{
		holdOnce_ = true;
		return hold(ops);
	}
	/// Matching calls take `d` longer.
	FaultReadWriterAt &delay(Ops ops, std::chrono::microseconds d)
	{
		delayOps_ = ops;
		delay_ = d;
		return blocking();
	}
	/// The first `n` matching calls go through, every later one fails with `error`.
	FaultReadWriterAt &failAfter(Ops ops, uint64_t n, int error = EIO)
	{
		failOps_ = ops;
		failAfter_ = n;
		failError_ = error;
		return *this;
	}
	/// Says it may block (isFast() false), so servers run it on their worker pool, like a
	/// file, dir or remote backend. Implied by hold(), hangOnce() and delay().
	FaultReadWriterAt &blocking()
	{
		blocking_ = true;
		return *this;
	}

	/// Lets every held call, and every later one, through.
	void release()
	{
		std::lock_guard lock(mutex_);
		released_ = true;
		changed_.notify_all();
	}
	/// release() `after` from now, on a thread the caller joins.
	std::thread releaseAfter(std::chrono::milliseconds after)
	{
		return std::thread([this, after] {
			std::this_thread::sleep_for(after);
			release();
		});
	}
	/// Waits until a call has been held (it may have been released since).
	void waitHeld()
	{
		std::unique_lock lock(mutex_);
		changed_.wait(lock, [&] { return held_ > 0; });
	}
	/// Calls of `ops` that went through to the stage below and returned.
	int completed(Ops ops) const
	{
		return ((ops & kReads) ? readsDone_.load() : 0) + ((ops & kWrites) ? writesDone_.load() : 0);
	}
	/// Waits until completed(ops) reaches `n`.
	void waitCompleted(Ops ops, int n) const
	{
		while (completed(ops) < n)
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}

	r3d::Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override
	{
		if (auto fault = before(kReads, offset))
			return r3d::unexpected(*fault);
		auto r = next_->readAt(buf, offset);
		readsDone_++;
		return r;
	}
	r3d::Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		if (auto fault = before(kWrites, offset))
			return r3d::unexpected(*fault);
		auto r = next_->writeAt(buf, offset);
		writesDone_++;
		return r;
	}
	bool isFast() const override { return !blocking_ && next_->isFast(); }

private:
	// Applies the faults configured for this call; an errno when it is to fail.
	std::optional<int> before(Ops op, uint64_t offset)
	{
		uint64_t n = (op == kReads ? readsSeen_ : writesSeen_)++;
		if ((failOps_ & op) && n >= failAfter_)
			return failError_;
		if ((holdOps_ & op) && (!holdOffset_ || *holdOffset_ == offset) && (!holdOnce_ || !hung_.exchange(true))) {
			std::unique_lock lock(mutex_);
			held_++;
			changed_.notify_all();
			changed_.wait(lock, [&] { return released_; });
		}
		if (delayOps_ & op)
			std::this_thread::sleep_for(delay_);
		return std::nullopt;
	}

	unsigned holdOps_ = 0;
	std::optional<uint64_t> holdOffset_;
	bool holdOnce_ = false;
	unsigned delayOps_ = 0;
	std::chrono::microseconds delay_{ 0 };
	unsigned failOps_ = 0;
	uint64_t failAfter_ = 0;
	int failError_ = EIO;
	bool blocking_ = false;

	std::atomic<uint64_t> readsSeen_{ 0 };
	std::atomic<uint64_t> writesSeen_{ 0 };
	std::atomic<int> readsDone_{ 0 };
	std::atomic<int> writesDone_{ 0 };
	std::atomic<bool> hung_{ false };
	std::mutex mutex_;
	std::condition_variable changed_;
	int held_ = 0;
	bool released_ = false;
};

} // namespace r3test
