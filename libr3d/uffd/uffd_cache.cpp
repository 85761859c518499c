#include "uffd/uffd_cache.hpp"

#include <chrono>
#include <cstring>
#include <thread>

#include <unistd.h>

namespace r3d::uffd {
namespace {

// How long a copy keeps waiting for a changing layout before it gives up with EAGAIN (the
// puller retries it). An event is read within microseconds unless the server is stuck.
constexpr auto kSettleLimit = std::chrono::seconds(5);

} // namespace

UffdCache::UffdCache(UserfaultFd &uffd, const SegmentMap &segments, const std::atomic<bool> &closing, uint64_t size)
	: uffd_(uffd), segments_(segments), closing_(closing), size_(size),
	  page_(static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)))
{
}

Result<void> UffdCache::copyPiece(uintptr_t dst, const std::byte *src, uint64_t len)
{
	auto sleep = std::chrono::microseconds(20);
	auto deadline = std::chrono::steady_clock::time_point{};
	uint64_t done = 0;
	while (done < len) {
		if (closing_.load(std::memory_order_acquire))
			return {}; // the region is going away: nothing to fill any more
		auto c = uffd_.copy(reinterpret_cast<void *>(dst + done), src + done, len - done, writeProtect_);
		done += c.bytes;
		switch (c.error) {
		case 0:
			break;
		case EEXIST:
			// That page is there already: keep it and copy the rest.
			existing_.fetch_add(1, std::memory_order_relaxed);
			done += page_;
			break;
		case EAGAIN: {
			retries_.fetch_add(1, std::memory_order_relaxed);
			auto now = std::chrono::steady_clock::now();
			if (deadline == std::chrono::steady_clock::time_point{})
				deadline = now + kSettleLimit;
			else if (now > deadline)
				return unexpected(EAGAIN);
			std::this_thread::sleep_for(sleep);
			sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
			break;
		}
		case ENOENT:
			// Unmapped under us (the UNMAP event is on its way): nothing to fill there.
			return {};
		case ESRCH:
		case ENOSPC:
			// The address space is gone (a forked child exited).
			return unexpected(ECANCELED);
		default:
			return unexpected(c.error);
		}
	}
	return {};
}

Result<void> UffdCache::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, true));
	if (offset % page_ != 0 || (buf.size() % page_ != 0 && offset + buf.size() != size_))
		return unexpected(EINVAL);
	Result<void> result;
	segments_.forEachMapped(offset, buf.size(), [&](uintptr_t addr, uint64_t off, uint64_t len) {
		if (result)
			result = copyPiece(addr, buf.data() + (off - offset), len);
	});
	return result;
}

Result<void> UffdCache::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, false));
	if (foreign_)
		return unexpected(ENOTSUP);
	// Only for chunks known present: a missing page would fault into this very region, so
	// never call it on the fault server's threads for anything else.
	uint64_t covered = 0;
	segments_.forEachMapped(offset, buf.size(), [&](uintptr_t addr, uint64_t off, uint64_t len) {
		std::memcpy(buf.data() + (off - offset), reinterpret_cast<const void *>(addr), len);
		covered += len;
	});
	if (covered != buf.size())
		return unexpected(EFAULT);
	return {};
}

} // namespace r3d::uffd
