#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <r3d/unique_fd.hpp>

namespace r3d::backends {

/// A bounded least-recently-used set of open files keyed by number. Handles are shared, so
/// evicting an entry never closes an fd another thread is still using.
class FdCache
{
public:
	using Handle = std::shared_ptr<const UniqueFd>;
	using Opener = std::function<UniqueFd(uint64_t key)>;

	explicit FdCache(size_t capacity) : capacity_(capacity) {}

	/// The cached handle of `key`, or the result of `open(key)` (cached if valid; a null
	/// handle with errno set if not).
	Handle get(uint64_t key, const Opener &open);
	void erase(uint64_t key);
	size_t size() const;

private:
	struct Entry {
		Handle fd;
		std::list<uint64_t>::iterator lru;
	};

	size_t capacity_;
	mutable std::mutex mutex_;
	std::list<uint64_t> lru_; ///< most recent first
	std::unordered_map<uint64_t, Entry> entries_;
};

} // namespace r3d::backends
