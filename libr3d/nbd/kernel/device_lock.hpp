#pragma once

#include <string>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::nbd::kernel {

/// An open /dev/nbdN holding an exclusive flock. flock locks belong to the open file
/// description, so two attaches race safely whether they run in one process or in two:
/// the loser gets EWOULDBLOCK and moves on. Released on close, including on kill -9.
class DeviceLock
{
public:
	/// Opens `path` read-write and locks it without waiting. EWOULDBLOCK when another
	/// attach holds it; the open's errno (ENOENT, EACCES, ...) otherwise.
	static Result<DeviceLock> tryLock(const std::string &path);

	int fd() const { return fd_.get(); }
	/// Drops the lock but keeps the device open. udevd postpones the events of a device
	/// someone holds LOCK_EX on (systemd's block device locking), so an attach unlocks
	/// once the device is configured; the kernel refuses a second setup from then on.
	void unlock();
	const std::string &path() const { return path_; }

private:
	DeviceLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

	std::string path_;
	UniqueFd fd_;
};

} // namespace r3d::nbd::kernel
