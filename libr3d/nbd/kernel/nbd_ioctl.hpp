#pragma once

#include <cstdint>
#include <string>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::nbd::kernel {

/// The legacy ioctl interface of one /dev/nbdN, for kernels without the netlink family.
/// The setters configure the device; doIt() starts it and blocks until it disconnects,
/// so it runs on a thread of its own while another thread calls disconnect().
/// Every call fails with the kernel's errno, e.g. EBUSY when another task set it up.
class NbdIoctl
{
public:
	/// Borrows `device`, an fd of /dev/nbdN opened read-write; it must outlive this.
	explicit NbdIoctl(int device) : fd_(device) {}

	Result<void> setSocket(int socket) const;
	Result<void> setBlockSize(uint64_t bytes) const;
	Result<void> setSizeBlocks(uint64_t blocks) const;
	Result<void> setFlags(uint64_t transmissionFlags) const;
	Result<void> setTimeout(uint64_t seconds) const;
	/// Blocks while the device is connected; returns when it disconnects.
	Result<void> doIt() const;
	Result<void> clearQueue() const;
	Result<void> disconnect() const;
	Result<void> clearSocket() const;

private:
	Result<void> call(unsigned long request, unsigned long argument) const;

	int fd_;
};

} // namespace r3d::nbd::kernel
