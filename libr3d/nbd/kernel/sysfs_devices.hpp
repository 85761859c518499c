#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace r3d::nbd::kernel {

/// What sysfs says about one nbd device.
struct NbdDeviceState {
	unsigned index = 0;
	uint64_t sizeSectors = 0;   ///< /sys/block/nbdN/size, in 512-byte sectors
	std::optional<pid_t> pid;   ///< /sys/block/nbdN/pid, present while connected
	std::string backend;        ///< /sys/block/nbdN/backend (netlink identifier), or ""

	/// Not connected and no size. A device being set up through ioctls still looks
	/// free here, which is why the ioctl path also takes a lock (DeviceLock).
	bool looksFree() const { return !pid && sizeSectors == 0; }
};

/// Reads nbd devices from sysfs. Roots are parameters so tests can point them at a fake
/// tree in a temporary directory.
class SysfsDevices
{
public:
	explicit SysfsDevices(std::string sysRoot = "/sys", std::string devRoot = "/dev");

	/// Every /sys/block/nbdN, ordered by N.
	std::vector<NbdDeviceState> list() const;
	std::optional<NbdDeviceState> state(unsigned index) const;
	/// One attribute of state(), for pollers that need no more: the size (nullopt: no
	/// such device) and the pid of the connection (nullopt: not connected, or no device).
	std::optional<uint64_t> sizeSectors(unsigned index) const;
	std::optional<pid_t> pid(unsigned index) const;
	/// Whether the nbd driver is present (built in or loaded).
	bool driverPresent() const;

	std::string devicePath(unsigned index) const;
	/// "/dev/nbd3", "nbd3" or "3" → 3; nullopt for anything else.
	static std::optional<unsigned> parseDevice(const std::string &text);

	const std::string &sysRoot() const { return sysRoot_; }

private:
	std::string blockDir(unsigned index) const;

	std::string sysRoot_;
	std::string devRoot_;
};

} // namespace r3d::nbd::kernel
