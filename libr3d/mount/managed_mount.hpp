#pragma once

#include <memory>
#include <string>

#include "mount/direct_mount.hpp"
#include "mount/managed_region.hpp"

namespace r3d::mount {

/// A managed region as a kernel block device: /dev/nbdN ⇄ nbd::Server ⇄ ManagedRegion.
/// Everything a DirectMount does (attach, fds, holders, close), plus the region's status,
/// Sync() and a push of everything dirty on close.
class ManagedMount final : public Mount
{
public:
	/// Opens `remoteUri` on `options.runtime`, the region in front of it, then attaches.
	static ResultMsg<std::unique_ptr<ManagedMount>> open(const std::string &remoteUri, ManagedOptions managed,
							     DirectMountOptions options, const Progress &pullFirst = {});
	/// The device serves `served` (a stage in front of the region's top, e.g. the daemon's
	/// diverter), or the top itself when null.
	static ResultMsg<std::unique_ptr<ManagedMount>> open(std::shared_ptr<ManagedRegion> region,
							     DirectMountOptions options,
							     std::shared_ptr<ReadWriterAt> served = nullptr);

	MountKind kind() const override { return MountKind::Managed; }
	std::string path() const override { return device_->path(); }
	uint64_t size() const override { return region_->size(); }
	ResultMsg<UniqueFd> openFd(int flags) override { return device_->openFd(flags); }
	Counters counters() const override;
	bool serving() const override { return device_->serving(); }
	std::vector<std::string> holders() const override { return device_->holders(); }
	/// Detaches the device (failing with EBUSY while held, unless `force`), then pushes
	/// everything dirty to the remote.
	ResultMsg<void> close(bool force) override { return close(force, false, {}); }
	ResultMsg<void> close(bool force, bool discardDirty, const Progress &progress);

	ManagedRegion &region() { return *region_; }
	DirectMount &device() { return *device_; }

private:
	ManagedMount(std::shared_ptr<ManagedRegion> region, std::unique_ptr<DirectMount> device);

	std::shared_ptr<ManagedRegion> region_;
	std::unique_ptr<DirectMount> device_;
};

} // namespace r3d::mount
