#include "nbd/kernel/nbd_ioctl.hpp"

#include <linux/nbd.h>
#include <sys/ioctl.h>

namespace r3d::nbd::kernel {

Result<void> NbdIoctl::call(unsigned long request, unsigned long argument) const
{
	if (::ioctl(fd_, request, argument) != 0)
		return unexpected(errno);
	return {};
}

Result<void> NbdIoctl::setSocket(int socket) const
{
	return call(NBD_SET_SOCK, static_cast<unsigned long>(socket));
}

Result<void> NbdIoctl::setBlockSize(uint64_t bytes) const
{
	return call(NBD_SET_BLKSIZE, bytes);
}

Result<void> NbdIoctl::setSizeBlocks(uint64_t blocks) const
{
	return call(NBD_SET_SIZE_BLOCKS, blocks);
}

Result<void> NbdIoctl::setFlags(uint64_t transmissionFlags) const
{
	return call(NBD_SET_FLAGS, transmissionFlags);
}

Result<void> NbdIoctl::setTimeout(uint64_t seconds) const
{
	return call(NBD_SET_TIMEOUT, seconds);
}

Result<void> NbdIoctl::doIt() const
{
	// Not retried on EINTR: a signal makes the kernel tear the device down, so there
	// is nothing to resume.
	return call(NBD_DO_IT, 0);
}

Result<void> NbdIoctl::clearQueue() const
{
	return call(NBD_CLEAR_QUE, 0);
}

Result<void> NbdIoctl::disconnect() const
{
	return call(NBD_DISCONNECT, 0);
}

Result<void> NbdIoctl::clearSocket() const
{
	return call(NBD_CLEAR_SOCK, 0);
}

} // namespace r3d::nbd::kernel
