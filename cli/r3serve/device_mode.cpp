#include "device_mode.hpp"

#include <r3d/log.hpp>

#include "mount/managed_region.hpp"
#include "serve_options.hpp"

namespace r3serve {

r3d::ResultMsg<void> DeviceMode::start()
{
	r3d::mount::DirectMountOptions options;
	options.device = o_.device;
	options.connections = o_.connections;
	if (!o_.attachMethod.empty())
		options.attach.method = *r3d::nbd::kernel::parseAttachMethod(o_.attachMethod);
	if (!o_.ready.empty())
		options.attach.ready = *r3d::nbd::kernel::parseReadyMethod(o_.ready);
	options.readOnly = o_.readOnly;
	options.attach.blockSize = o_.blockSize;
	// A swap device whose connection is dropped loses every page in it, and a process (init
	// too) then dies of the failed swap-in: under --swap a slow request waits, it never fails.
	if (o_.timeout)
		options.attach.timeout = std::chrono::seconds(*o_.timeout);
	else if (o_.swap)
		options.attach.timeout = std::chrono::seconds(0);
	if (o_.deadConnTimeout)
		options.attach.deadConnTimeout = std::chrono::seconds(*o_.deadConnTimeout);
	options.runtime = &runtime_;
	options.maxRequest = o_.maxRequest;
	const auto &[name, uri] = o_.exports.front();
	options.attach.name = name.empty() ? uri : name;

	if (o_.managed) {
		auto exports = openExports(o_, "device", runtime_);
		if (!exports)
			return r3d::unexpectedOf(exports.error());
		exports_ = std::move(*exports);
		auto mount = r3d::mount::DirectMount::open(exports_.front().backend, options);
		if (!mount)
			return r3d::unexpectedOf(mount.error());
		mount_ = std::move(*mount);
		return {};
	}
	auto mount = r3d::mount::DirectMount::open(uri, options);
	if (!mount)
		return r3d::unexpectedOf(mount.error());
	mount_ = std::move(*mount);
	return {};
}

Counters DeviceMode::counters() const
{
	return withManagedCounters(mount_ ? nbdCounters(mount_->stats()) : Counters{}, exports_);
}

bool DeviceMode::sync()
{
	// The device is gone by now (stop()); a managed region pushes what it holds.
	return exports_.empty() || syncExports(o_, exports_);
}

std::string DeviceMode::failure() const
{
	if (mount_->serving())
		return {};
	return mount_->devicePath() + ": the kernel dropped the connection";
}

ServeMode::Stop DeviceMode::stop(bool force)
{
	auto logger = r3d::log::get("r3serve");
	auto closed = mount_->close(std::chrono::seconds(10), force);
	if (!closed && closed.error().code.value() == EBUSY && !force) {
		// Disconnecting now would lose what the filesystem has not written yet.
		logger->warn("{}; still serving — signal again to disconnect anyway", closed.error().message);
		return Stop::Busy;
	}
	if (!closed) {
		logger->error("{}", closed.error().message);
		return Stop::Failed;
	}
	return Stop::Stopped;
}

} // namespace r3serve
