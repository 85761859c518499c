#include "direct_mount_device.hpp"

#include <cerrno>

#include "errors.hpp"

namespace r3mapd {

namespace {

// How long a disconnect may wait for the kernel to let go of the device.
constexpr std::chrono::seconds kCloseTimeout{ 10 };

} // namespace

DirectMountDevice::DirectMountDevice(std::unique_ptr<r3d::mount::DirectMount> mount) : mount_(std::move(mount)) {}

r3d::ResultMsg<void> DirectMountDevice::close(bool force)
{
	auto closed = mount_->close(kCloseTimeout, force);
	if (closed)
		return {};
	// EBUSY: still mounted or opened exclusively; the device was left connected.
	bool held = closed.error().code == std::error_code(EBUSY, std::system_category());
	return rename(held ? Errc::Busy : Errc::BackendFailed, closed.error());
}

} // namespace r3mapd
