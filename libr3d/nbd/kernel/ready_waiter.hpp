#pragma once

#include <chrono>
#include <memory>

#include <r3d/result.hpp>

#include "nbd/kernel/attach_options.hpp"
#include "nbd/kernel/sysfs_devices.hpp"

namespace r3d::nbd::kernel {

/// Waits until a just-attached device has its size, i.e. is usable. Created before the
/// attach starts, so an event-based waiter cannot miss the event.
class ReadyWaiter
{
public:
	using Clock = std::chrono::steady_clock;

	virtual ~ReadyWaiter() = default;

	/// ETIMEDOUT at `deadline`; ECANCELED as soon as `abortFd` (if >= 0) turns readable,
	/// e.g. when the ioctl thread that should bring the device up has already failed.
	virtual Result<void> wait(unsigned index, Clock::time_point deadline, int abortFd) = 0;
	virtual ReadyMethod method() const = 0;

	static ResultMsg<std::unique_ptr<ReadyWaiter>> create(ReadyMethod method, const SysfsDevices &devices);
};

} // namespace r3d::nbd::kernel
