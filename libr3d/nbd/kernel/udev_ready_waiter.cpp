#include "nbd/kernel/udev_ready_waiter.hpp"

#include <cstring>
#include <string>

#include <libudev.h>
#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>

namespace r3d::nbd::kernel {

namespace {

bool udevdRunning()
{
	return ::access("/run/udev/control", F_OK) == 0;
}

} // namespace

ResultMsg<std::unique_ptr<UdevReadyWaiter>> UdevReadyWaiter::create(const SysfsDevices &devices)
{
	udev *context = udev_new();
	if (!context)
		return fail(errno ? errno : ENOMEM, "udev: cannot create a context");
	const char *source = udevdRunning() ? "udev" : "kernel";
	udev_monitor *monitor = udev_monitor_new_from_netlink(context, source);
	if (!monitor) {
		int err = errno ? errno : EPROTO;
		udev_unref(context);
		return fail(err, fmt::format("udev: cannot monitor {} events: {}", source, std::strerror(err)));
	}
	udev_monitor_filter_add_match_subsystem_devtype(monitor, "block", "disk");
	if (int r = udev_monitor_enable_receiving(monitor); r < 0) {
		udev_monitor_unref(monitor);
		udev_unref(context);
		return fail(-r, fmt::format("udev: cannot receive {} events: {}", source, std::strerror(-r)));
	}
	return std::unique_ptr<UdevReadyWaiter>(new UdevReadyWaiter(devices, context, monitor, source));
}

UdevReadyWaiter::UdevReadyWaiter(const SysfsDevices &devices, udev *context, udev_monitor *monitor, const char *source)
	: devices_(devices), udev_(context), monitor_(monitor), source_(source)
{
}

UdevReadyWaiter::~UdevReadyWaiter()
{
	udev_monitor_unref(monitor_);
	udev_unref(udev_);
}

Result<void> UdevReadyWaiter::wait(unsigned index, Clock::time_point deadline, int abortFd)
{
	std::string name = "nbd" + std::to_string(index);
	for (;;) {
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
		if (left <= 0)
			return unexpected(ETIMEDOUT);
		pollfd pfds[2] = { { udev_monitor_get_fd(monitor_), POLLIN, 0 }, { abortFd, POLLIN, 0 } };
		int n = ::poll(pfds, abortFd >= 0 ? 2 : 1, static_cast<int>(left));
		if (n < 0 && errno != EINTR)
			return unexpected(errno);
		if (n <= 0)
			continue;
		if (abortFd >= 0 && (pfds[1].revents & POLLIN))
			return unexpected(ECANCELED);
		while (udev_device *device = udev_monitor_receive_device(monitor_)) {
			const char *sysname = udev_device_get_sysname(device);
			const char *action = udev_device_get_action(device);
			bool ours = sysname && name == sysname && action && std::strcmp(action, "change") == 0;
			udev_device_unref(device);
			if (!ours)
				continue;
			// A disconnect sends "change" too; only a size means connected.
			if (devices_.sizeSectors(index).value_or(0) > 0)
				return {};
		}
	}
}

} // namespace r3d::nbd::kernel
