#pragma once

#include <memory>

#include "base/runtime.hpp"
#include "mount/direct_mount.hpp"
#include "serve_mode.hpp"

namespace r3serve {

struct ServeOptions;

/// r3serve --device: attaches the backend to a kernel nbd device; its path is the
/// address. Stopping flushes, disconnects and frees the device, unless it is still
/// mounted: then the first signal is refused and a second one forces it.
class DeviceMode final : public ServeMode
{
public:
	DeviceMode(const ServeOptions &options, r3d::Runtime &runtime) : o_(options), runtime_(runtime) {}

	r3d::ResultMsg<void> start() override;
	std::string address() const override { return mount_->devicePath(); }
	std::string what() const override { return mount_->devicePath(); }
	Counters counters() const override;
	std::string failure() const override;
	Stop stop(bool force) override;
	bool sync() override;

private:
	const ServeOptions &o_;
	r3d::Runtime &runtime_;
	std::vector<OpenedExport> exports_; ///< with --managed: the region the device serves
	std::unique_ptr<r3d::mount::DirectMount> mount_;
};

} // namespace r3serve
