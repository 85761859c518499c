#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "nbd/kernel/attach_options.hpp"
#include "nbd/kernel/device_lock.hpp"
#include "nbd/kernel/sysfs_devices.hpp"

namespace r3d::nbd::kernel {

class NbdNetlink;
class ReadyWaiter;

/// A /dev/nbdN connected to sockets whose other ends an NBD server (ours) serves. The
/// kernel skips the handshake: the server must already be in the transmission phase.
///
/// attach() picks the method (netlink, or ioctls when the family is absent), the device
/// (the kernel's choice over netlink, a locked sysfs scan over ioctls) and waits for
/// readiness, all within options.readyTimeout: it returns an error, never hangs.
class KernelDevice
{
public:
	using Clock = std::chrono::steady_clock;

	/// The kernel takes its own reference to each socket; ours are closed on return.
	static ResultMsg<std::unique_ptr<KernelDevice>> attach(std::vector<UniqueFd> sockets, const AttachOptions &options);
	/// Detaches if still attached.
	~KernelDevice();
	KernelDevice(const KernelDevice &) = delete;
	KernelDevice &operator=(const KernelDevice &) = delete;

	unsigned index() const { return index_; }
	const std::string &path() const { return path_; }
	AttachMethod method() const { return method_; }
	ReadyMethod readyMethod() const { return readyMethod_; }
	/// From the start of attach() until the device was usable.
	std::chrono::microseconds timeToReady() const { return timeToReady_; }

	/// Hands the kernel a new socket for a connection it dropped (netlink RECONFIGURE; the
	/// device, its page cache and mounts stay). The kernel answers success also when no
	/// connection is dead, and then does not take the socket: the caller sees its end of
	/// it close. ENOTSUP for a device attached through ioctls.
	ResultMsg<void> reconnect(int socket, std::chrono::milliseconds timeout) const;
	/// fsync on the device: its dirty pages and a FLUSH reach the server.
	ResultMsg<void> flush() const;
	/// Whether the device is mounted or opened exclusively (O_EXCL open fails with EBUSY).
	bool inUse() const;
	/// Where filesystems on this device are mounted, from /proc/self/mountinfo (by the
	/// device node's major:minor).
	std::vector<std::string> mountpoints() const;
	/// syncfs() on every filesystem mounted from this device, so its dirty data and journal
	/// reach the device before a forced disconnect; flush() alone only writes the block
	/// device's own page cache. Returns the mountpoints synced; fails naming every one that
	/// could not be (then the others were still synced).
	ResultMsg<std::vector<std::string>> syncMounted() const;
	/// The mountpoints of the device `rdev` in a mountinfo text (proc(5)), unescaped.
	static std::vector<std::string> mountpointsIn(const std::string &mountinfo, dev_t rdev);
	/// Disconnects (the server gets NBD_CMD_DISC) and waits until the device is free
	/// again. Fails with EBUSY if someone still holds it open (a mounted filesystem)
	/// after `timeout`. Idempotent.
	ResultMsg<void> detach(std::chrono::milliseconds timeout = std::chrono::seconds(10));

	/// Disconnects devices that an r3map process attached through netlink and left
	/// behind when it died (kill -9), so they can be used again. Only devices whose
	/// owner tag names a dead process of our PID namespace; `only` limits it to one.
	/// Returns the indexes reclaimed. Gives up at `deadline`, so an attach stays bounded.
	static std::vector<unsigned> reclaimStale(const AttachOptions &options, std::optional<unsigned> only = std::nullopt,
						  Clock::time_point deadline = Clock::time_point::max());

	/// After a CONNECT whose reply never came (ETIMEDOUT): the kernel may have connected a
	/// device all the same, which nobody would ever disconnect (its owner tag names us, a
	/// live process, so reclaimStale() leaves it). Disconnects every device whose backend
	/// identifier is `identifier` (unique per attach) and returns their indexes.
	static std::vector<unsigned> disconnectLost(const NbdNetlink &netlink, const SysfsDevices &devices,
						    const std::string &identifier);

private:
	struct IoctlRun;

	/// reclaimStale() with the netlink family already looked up (`known`), or not (nullptr).
	static std::vector<unsigned> reclaimStaleWith(const AttachOptions &options, std::optional<unsigned> only,
						      Clock::time_point deadline, const NbdNetlink *known);

	explicit KernelDevice(const AttachOptions &options);
	ResultMsg<void> attachNetlink(const NbdNetlink &netlink, const std::vector<int> &sockets,
				      const AttachOptions &options, ReadyWaiter &waiter, Clock::time_point deadline);
	ResultMsg<void> attachIoctl(const std::vector<int> &sockets, const AttachOptions &options, ReadyWaiter &waiter,
				    Clock::time_point deadline);
	/// `owned`: our first NBD_SET_SOCK went through, so the device's setup is ours to undo.
	ResultMsg<void> configureIoctl(int device, const std::vector<int> &sockets, const AttachOptions &options,
				       bool &owned) const;
	ResultMsg<void> stopIoctl(Clock::time_point deadline);
	/// Lowers queue/max_sectors_kb to `maxBytes` if it is above it.
	ResultMsg<void> limitRequests(uint32_t maxBytes) const;
	bool waitFree(Clock::time_point deadline) const;

	SysfsDevices devices_;
	std::string procRoot_;
	unsigned index_ = 0;
	std::string path_;
	std::string identifier_; ///< our owner tag (netlink), to recognise the device as ours
	AttachMethod method_ = AttachMethod::Netlink;
	ReadyMethod readyMethod_ = ReadyMethod::Sysfs;
	std::chrono::microseconds timeToReady_{ 0 };
	bool attached_ = false;

	// ioctl path: the locked device fd and the thread blocked in NBD_DO_IT.
	std::optional<DeviceLock> lock_;
	std::shared_ptr<IoctlRun> run_;
	std::thread doIt_;
};

} // namespace r3d::nbd::kernel
