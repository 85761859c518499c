#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <r3d/result.hpp>

namespace r3d::nbd::kernel {

/// How the device is configured in the kernel.
enum class AttachMethod {
	Auto,    ///< netlink when the "nbd" family exists, ioctls otherwise
	Netlink,
	Ioctl,
};

/// How we learn that the device is usable.
enum class ReadyMethod {
	Sysfs, ///< poll /sys/block/nbdN/size
	Udev,  ///< libudev monitor: the device's "change" event (after udevd's rules if it runs)
};

const char *toString(AttachMethod method);
const char *toString(ReadyMethod method);
std::optional<AttachMethod> parseAttachMethod(const std::string &text);
std::optional<ReadyMethod> parseReadyMethod(const std::string &text);

/// The kernel accepts a power of two from 512 bytes to the page size.
ResultMsg<void> checkBlockSize(uint32_t bytes);

struct AttachOptions {
	std::optional<unsigned> index; ///< nullopt: any free device
	AttachMethod method = AttachMethod::Auto;
	/// Sysfs by default: measured faster than udev in the guest (README, "VM tests").
	ReadyMethod ready = ReadyMethod::Sysfs;
	uint64_t sizeBytes = 0;
	uint32_t blockSize = 4096;
	uint16_t transmissionFlags = 0; ///< what our server advertises for the export
	/// A request the server has not answered after this long fails the connection;
	/// 0 would let a dead server hang readers forever.
	std::chrono::seconds timeout{ 30 };
	/// After a connection dies, I/O waits this long for a reconnect before failing.
	std::chrono::seconds deadConnTimeout{ 5 };
	/// Bound on the whole attach, from the first syscall to "ready".
	std::chrono::milliseconds readyTimeout{ 15000 };
	std::string name; ///< shown in /sys/block/nbdN/backend
	/// The largest request the server takes (0: no cap). Once the device is up,
	/// queue/max_sectors_kb is lowered to it if the kernel would send larger ones.
	uint32_t maxRequestBytes = 0;
	std::string sysRoot = "/sys";
	std::string devRoot = "/dev";
	std::string procRoot = "/proc";
};

} // namespace r3d::nbd::kernel
