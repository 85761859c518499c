#include "stages/lockable_read_writer_at.hpp"

#include <cerrno>

namespace r3d::stages {

LockableReadWriterAt::LockableReadWriterAt(std::shared_ptr<ReadWriterAt> next)
	: ForwardingReadWriterAt(std::move(next))
{
}

template <class Fn>
auto LockableReadWriterAt::gated(Fn &&fn) -> decltype(fn())
{
	{
		std::unique_lock lock(mutex_);
		cond_.wait(lock, [this] { return !locked_; });
		++inFlight_;
	}
	auto result = fn();
	{
		std::lock_guard lock(mutex_);
		if (--inFlight_ == 0 && locked_)
			cond_.notify_all();
	}
	return result;
}

Result<void> LockableReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	return gated([&] { return next_->readAt(buf, offset); });
}

Result<void> LockableReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	return gated([&] { return next_->writeAt(buf, offset); });
}

Result<void> LockableReadWriterAt::sync()
{
	return gated([&] { return next_->sync(); });
}

Result<void> LockableReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	return gated([&] { return next_->trim(offset, length); });
}

Result<void> LockableReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	return gated([&] { return next_->writeZeroes(offset, length); });
}

Result<void> LockableReadWriterAt::writeZeroesFast(uint64_t offset, uint64_t length)
{
	return gated([&] { return next_->writeZeroesFast(offset, length); });
}

Result<void> LockableReadWriterAt::cache(uint64_t offset, uint64_t length)
{
	return gated([&] { return next_->cache(offset, length); });
}

Result<std::vector<Extent>> LockableReadWriterAt::extents(uint64_t offset, uint64_t length)
{
	return gated([&] { return next_->extents(offset, length); });
}

void LockableReadWriterAt::lock()
{
	std::unique_lock lock(mutex_);
	locked_ = true;
	cond_.wait(lock, [this] { return inFlight_ == 0; });
}

void LockableReadWriterAt::unlock()
{
	{
		std::lock_guard lock(mutex_);
		locked_ = false;
	}
	cond_.notify_all();
}

bool LockableReadWriterAt::locked() const
{
	std::lock_guard lock(mutex_);
	return locked_;
}

uint64_t LockableReadWriterAt::size() const
{
	std::lock_guard lock(mutex_);
	return next_->size();
}

bool LockableReadWriterAt::canFastZero() const
{
	std::lock_guard lock(mutex_);
	return next_->canFastZero();
}

uint64_t LockableReadWriterAt::preferredChunk() const
{
	std::lock_guard lock(mutex_);
	return next_->preferredChunk();
}

Result<std::shared_ptr<ReadWriterAt>> LockableReadWriterAt::replaceNext(std::shared_ptr<ReadWriterAt> next)
{
	std::lock_guard lock(mutex_);
	// Calls read next_ outside the mutex once through the gate: only a drained gate may swap it.
	if (!locked_ || inFlight_ != 0 || !next || next->size() != next_->size())
		return unexpected(EINVAL);
	std::swap(next_, next);
	return next;
}

std::shared_ptr<ReadWriterAt> LockableReadWriterAt::current() const
{
	std::lock_guard lock(mutex_);
	return next_;
}

} // namespace r3d::stages
