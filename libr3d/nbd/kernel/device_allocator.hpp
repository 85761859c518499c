#pragma once

#include <set>

#include <r3d/result.hpp>

#include "nbd/kernel/device_lock.hpp"
#include "nbd/kernel/sysfs_devices.hpp"

namespace r3d::nbd::kernel {

/// A device that looked free and is now locked by us.
struct LockedDevice {
	unsigned index;
	DeviceLock lock;
};

/// Picks a free nbd device for the ioctl path: scans sysfs, locks the first candidate
/// nobody else holds, and checks again under the lock (another attach may have finished
/// between scan and lock). The caller still treats EBUSY from NBD_SET_SOCK as "taken"
/// and asks again with that index skipped.
class DeviceAllocator
{
public:
	explicit DeviceAllocator(const SysfsDevices &devices) : devices_(devices) {}

	/// ENODEV when the driver has no devices at all, EBUSY when every one is taken.
	ResultMsg<LockedDevice> lockFree(const std::set<unsigned> &skip = {}) const;
	/// Locks one given device; EBUSY when it is connected or locked by someone else.
	ResultMsg<LockedDevice> lock(unsigned index) const;

private:
	const SysfsDevices &devices_;
};

} // namespace r3d::nbd::kernel
