#pragma once

#include <memory>

#include "mount/direct_mount.hpp"
#include "mount_device.hpp"

namespace r3mapd {

/// A DirectMount (kernel ⇄ socketpair ⇄ our NBD server ⇄ backend) as a daemon mount.
class DirectMountDevice final : public MountDevice
{
public:
	explicit DirectMountDevice(std::unique_ptr<r3d::mount::DirectMount> mount);

	std::string devicePath() const override { return mount_->devicePath(); }
	r3d::nbd::Stats stats() const override { return mount_->stats(); }
	bool serving() const override { return mount_->serving(); }
	std::vector<std::string> mountpoints() const override { return mount_->mountpoints(); }
	r3d::ResultMsg<void> close(bool force) override;

private:
	std::unique_ptr<r3d::mount::DirectMount> mount_;
};

} // namespace r3mapd
