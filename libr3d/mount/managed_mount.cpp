#include "mount/managed_mount.hpp"

#include <r3d/backend_factory.hpp>

namespace r3d::mount {

ManagedMount::ManagedMount(std::shared_ptr<ManagedRegion> region, std::unique_ptr<DirectMount> device)
	: region_(std::move(region)), device_(std::move(device))
{
}

ResultMsg<std::unique_ptr<ManagedMount>> ManagedMount::open(const std::string &remoteUri, ManagedOptions managed,
							    DirectMountOptions options, const Progress &pullFirst)
{
	auto remote = openBackend(remoteUri, options.runtime);
	if (!remote)
		return unexpectedOf(remote.error());
	auto region = ManagedRegion::open(std::move(*remote), remoteUri, std::move(managed), pullFirst);
	if (!region)
		return unexpectedOf(region.error());
	if (options.attach.name.empty())
		options.attach.name = remoteUri;
	return open(std::move(*region), std::move(options));
}

ResultMsg<std::unique_ptr<ManagedMount>> ManagedMount::open(std::shared_ptr<ManagedRegion> region,
							    DirectMountOptions options,
							    std::shared_ptr<ReadWriterAt> served)
{
	auto device = DirectMount::open(served ? std::move(served) : region->top(), std::move(options));
	if (!device)
		return unexpectedOf(device.error());
	return std::unique_ptr<ManagedMount>(new ManagedMount(std::move(region), std::move(*device)));
}

Counters ManagedMount::counters() const
{
	Counters c = device_->counters();
	auto r = region_->counters();
	c.insert(c.end(), r.begin(), r.end());
	return c;
}

ResultMsg<void> ManagedMount::close(bool force, bool discardDirty, const Progress &progress)
{
	if (auto r = device_->close(force); !r)
		return r;
	return region_->close(discardDirty, progress);
}

} // namespace r3d::mount
