#include "backends/fd_cache.hpp"

namespace r3d::backends {

FdCache::Handle FdCache::get(uint64_t key, const Opener &open)
{
	{
		std::lock_guard lock(mutex_);
		if (auto it = entries_.find(key); it != entries_.end()) {
			lru_.splice(lru_.begin(), lru_, it->second.lru);
			return it->second.fd;
		}
	}
	// Open outside the lock: it is a syscall and other chunks should not wait for it.
	UniqueFd fd = open(key);
	if (!fd)
		return nullptr;
	auto handle = std::make_shared<const UniqueFd>(std::move(fd));
	std::lock_guard lock(mutex_);
	if (auto it = entries_.find(key); it != entries_.end())
		return it->second.fd; // another thread opened it first; ours closes on return
	lru_.push_front(key);
	entries_.emplace(key, Entry{ handle, lru_.begin() });
	while (entries_.size() > capacity_) {
		entries_.erase(lru_.back());
		lru_.pop_back();
	}
	return handle;
}

void FdCache::erase(uint64_t key)
{
	std::lock_guard lock(mutex_);
	if (auto it = entries_.find(key); it != entries_.end()) {
		lru_.erase(it->second.lru);
		entries_.erase(it);
	}
}

size_t FdCache::size() const
{
	std::lock_guard lock(mutex_);
	return entries_.size();
}

} // namespace r3d::backends
