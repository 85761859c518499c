#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "mount/managed_region.hpp"

namespace r3mapd {

/// What a managed region has sent to the remote during the pushes of Sync, Unmount and
/// Stop, as their progress reports it: the region's own pushed count moves only when a
/// round is committed, and one round may carry everything that was dirty. Managed1's
/// PushedBytes shows the larger of the two, so progress moves while a big round is out.
class PushProgress
{
public:
	/// For ManagedRegion::syncAll() and close(); the object must outlive the call.
	r3d::mount::Progress callback()
	{
		return [this](uint64_t pushed, uint64_t) {
			uint64_t seen = sent_.load(std::memory_order_relaxed);
			while (pushed > seen && !sent_.compare_exchange_weak(seen, pushed, std::memory_order_relaxed))
				;
			return true;
		};
	}

	/// `region`'s status, its pushedBytes the larger of its own and what the pushes sent.
	r3d::mount::ManagedStatus statusOf(const r3d::mount::ManagedRegion &region) const
	{
		auto status = region.status();
		status.pushedBytes = std::max(status.pushedBytes, sent_.load(std::memory_order_relaxed));
		return status;
	}

private:
	std::atomic<uint64_t> sent_{ 0 };
};

} // namespace r3mapd
