#pragma once

#include "nbd/kernel/ready_waiter.hpp"

namespace r3d::nbd::kernel {

/// Polls /sys/block/nbdN/size every millisecond (cheap: one small read).
class SysfsReadyWaiter final : public ReadyWaiter
{
public:
	explicit SysfsReadyWaiter(const SysfsDevices &devices) : devices_(devices) {}

	Result<void> wait(unsigned index, Clock::time_point deadline, int abortFd) override;
	ReadyMethod method() const override { return ReadyMethod::Sysfs; }

private:
	const SysfsDevices &devices_;
};

} // namespace r3d::nbd::kernel
