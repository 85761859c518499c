#pragma once

#include <memory>

#include "nbd/kernel/ready_waiter.hpp"

struct udev;
struct udev_monitor;

namespace r3d::nbd::kernel {

/// Waits for the device's "change" uevent through a libudev monitor. When udevd runs,
/// the monitor listens to udevd's events, so "ready" also means udev's rules (symlinks,
/// permissions) have been applied; without udevd it listens to the kernel's own uevents.
class UdevReadyWaiter final : public ReadyWaiter
{
public:
	static ResultMsg<std::unique_ptr<UdevReadyWaiter>> create(const SysfsDevices &devices);
	~UdevReadyWaiter() override;

	Result<void> wait(unsigned index, Clock::time_point deadline, int abortFd) override;
	ReadyMethod method() const override { return ReadyMethod::Udev; }
	/// "udev" or "kernel": whose events we listen to.
	const char *source() const { return source_; }

private:
	UdevReadyWaiter(const SysfsDevices &devices, udev *context, udev_monitor *monitor, const char *source);

	const SysfsDevices &devices_;
	udev *udev_;
	udev_monitor *monitor_;
	const char *source_;
};

} // namespace r3d::nbd::kernel
