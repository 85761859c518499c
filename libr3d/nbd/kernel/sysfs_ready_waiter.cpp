#include "nbd/kernel/sysfs_ready_waiter.hpp"

#include <poll.h>

namespace r3d::nbd::kernel {

namespace {

constexpr int kPollIntervalMs = 1;

} // namespace

Result<void> SysfsReadyWaiter::wait(unsigned index, Clock::time_point deadline, int abortFd)
{
	for (;;) {
		if (devices_.sizeSectors(index).value_or(0) > 0)
			return {};
		if (Clock::now() >= deadline)
			return unexpected(ETIMEDOUT);
		pollfd pfd{ abortFd, POLLIN, 0 };
		int n = ::poll(&pfd, abortFd >= 0 ? 1 : 0, kPollIntervalMs);
		if (n > 0)
			return unexpected(ECANCELED);
	}
}

} // namespace r3d::nbd::kernel
