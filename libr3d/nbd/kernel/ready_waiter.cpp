#include "nbd/kernel/ready_waiter.hpp"

#include "nbd/kernel/sysfs_ready_waiter.hpp"
#include "nbd/kernel/udev_ready_waiter.hpp"

namespace r3d::nbd::kernel {

ResultMsg<std::unique_ptr<ReadyWaiter>> ReadyWaiter::create(ReadyMethod method, const SysfsDevices &devices)
{
	if (method == ReadyMethod::Sysfs)
		return std::unique_ptr<ReadyWaiter>(std::make_unique<SysfsReadyWaiter>(devices));
	auto udev = UdevReadyWaiter::create(devices);
	if (!udev)
		return unexpectedOf(udev.error());
	return std::unique_ptr<ReadyWaiter>(std::move(*udev));
}

} // namespace r3d::nbd::kernel
