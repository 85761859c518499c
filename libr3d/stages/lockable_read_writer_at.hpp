#pragma once

#include <condition_variable>
#include <mutex>

#include "stages/forwarding_read_writer_at.hpp"

namespace r3d::stages {

/// Blocks all I/O while locked. lock() also waits until the calls already inside `next`
/// have returned, so once it returns the backend is quiescent (migration finalize).
/// unlock() wakes every waiter. While locked, `next` may be replaced (a live mount diverted
/// through a migration's tracking front, and back): no call is inside the old one then.
class LockableReadWriterAt final : public ForwardingReadWriterAt
{
public:
	explicit LockableReadWriterAt(std::shared_ptr<ReadWriterAt> next);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	Result<void> sync() override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;
	Result<void> cache(uint64_t offset, uint64_t length) override;
	Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override;
	/// Calls may block for as long as the lock is held: never run them on a network thread.
	bool isFast() const override { return false; }
	// Read under the mutex: replaceNext() may swap `next` meanwhile.
	uint64_t size() const override;
	bool canFastZero() const override;
	uint64_t preferredChunk() const override;

	void lock();
	void unlock();
	bool locked() const;
	/// Only while locked (EINVAL otherwise, and for a `next` of another size); returns the
	/// one replaced.
	Result<std::shared_ptr<ReadWriterAt>> replaceNext(std::shared_ptr<ReadWriterAt> next);
	/// What calls go to now.
	std::shared_ptr<ReadWriterAt> current() const;

private:
	template <class Fn>
	auto gated(Fn &&fn) -> decltype(fn());

	mutable std::mutex mutex_;
	std::condition_variable cond_;
	bool locked_ = false;
	uint64_t inFlight_ = 0;
};

} // namespace r3d::stages
