#include "nbd/kernel/device_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>

namespace r3d::nbd::kernel {

Result<DeviceLock> DeviceLock::tryLock(const std::string &path)
{
	UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
	if (!fd)
		return unexpected(errno);
	while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
		if (errno != EINTR)
			return unexpected(errno);
	}
	return DeviceLock(path, std::move(fd));
}

void DeviceLock::unlock()
{
	(void)::flock(fd_.get(), LOCK_UN);
}

} // namespace r3d::nbd::kernel
