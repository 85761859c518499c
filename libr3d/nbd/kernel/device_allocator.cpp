#include "nbd/kernel/device_allocator.hpp"

#include <cstring>

#include <fmt/format.h>

namespace r3d::nbd::kernel {

ResultMsg<LockedDevice> DeviceAllocator::lock(unsigned index) const
{
	auto path = devices_.devicePath(index);
	auto before = devices_.state(index);
	if (!before)
		return fail(ENODEV, fmt::format("{}: no such nbd device", path));
	if (!before->looksFree())
		return fail(EBUSY, fmt::format("{} is connected (pid {})", path, before->pid.value_or(0)));
	auto locked = DeviceLock::tryLock(path);
	if (!locked) {
		if (locked.error().value() == EWOULDBLOCK)
			return fail(EBUSY, fmt::format("{} is being attached by another process", path));
		return fail(locked.error(), fmt::format("cannot open {}: {}", path, locked.error().message()));
	}
	auto after = devices_.state(index);
	if (!after || !after->looksFree())
		return fail(EBUSY, fmt::format("{} was taken while we locked it", path));
	return LockedDevice{ index, std::move(*locked) };
}

ResultMsg<LockedDevice> DeviceAllocator::lockFree(const std::set<unsigned> &skip) const
{
	auto all = devices_.list();
	if (all.empty())
		return fail(ENODEV, fmt::format("no nbd devices in {}/block: is the nbd module loaded?", devices_.sysRoot()));
	for (const auto &device : all) {
		if (skip.count(device.index) || !device.looksFree())
			continue;
		auto locked = lock(device.index);
		if (locked)
			return locked;
		int err = locked.error().code.value();
		if (err != EBUSY && err != ENOENT)
			return locked;
	}
	return fail(EBUSY, fmt::format("all {} nbd devices are in use (load nbd with a larger nbds_max)", all.size()));
}

} // namespace r3d::nbd::kernel
