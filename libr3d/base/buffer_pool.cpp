#include "base/buffer_pool.hpp"

namespace r3d {

BufferPool::Lease &BufferPool::Lease::operator=(Lease &&other) noexcept
{
	if (this != &other) {
		if (pool_)
			pool_->release(std::move(bytes_));
		pool_ = other.pool_;
		bytes_ = std::move(other.bytes_);
		other.pool_ = nullptr;
	}
	return *this;
}

BufferPool::Lease::~Lease()
{
	if (pool_)
		pool_->release(std::move(bytes_));
}

BufferPool::Lease BufferPool::acquire(size_t capacity)
{
	std::vector<std::byte> bytes;
	{
		std::lock_guard lock(mutex_);
		// Most recently released first: it is the likeliest to still be in cache.
		for (size_t i = free_.size(); i-- > 0;) {
			if (free_[i].capacity() >= capacity) {
				bytes = std::move(free_[i]);
				free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
				break;
			}
		}
	}
	if (bytes.capacity() < capacity)
		bytes.reserve(capacity);
	return Lease(this, std::move(bytes));
}

void BufferPool::release(std::vector<std::byte> bytes)
{
	if (bytes.capacity() > maxPooledCapacity_ || bytes.capacity() == 0)
		return;
	std::lock_guard lock(mutex_);
	if (free_.size() < maxBuffers_)
		free_.push_back(std::move(bytes));
}

} // namespace r3d
