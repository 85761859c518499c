#include "service/mount_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"
#include "service/request_options.hpp"
#include "service/statistics.hpp"

namespace r3mapd::service {

MountObject::MountObject(sdbus::IConnection &connection, ServiceState &state, const MountInfo &info)
	: AdaptorInterfaces(connection, kMountsPath + info.id), state_(state), info_(info)
{
	std::vector<std::string> interfaces{ kInterface };
	if (info.kind == r3d::mount::MountKind::Managed) {
		auto &mounts = state_.context.mounts;
		managed_ = std::make_unique<ManagedRegionObject>(
			connection, state_, kMountsPath + info.id, "mount " + info.id, info.managedOptions,
			[&mounts, id = info.id] { return mounts.managedStatus(id); },
			[&mounts, id = info.id] { return mounts.sync(id); });
		interfaces.push_back(ManagedRegionObject::kInterface);
	}
	registerAdaptor();
	emitInterfacesAddedSignal(interfaces);
}

MountObject::~MountObject()
{
	std::vector<std::string> interfaces{ kInterface };
	if (managed_)
		interfaces.push_back(ManagedRegionObject::kInterface);
	withdraw(*this, interfaces);
}

void MountObject::refreshManaged()
{
	if (managed_)
		managed_->refresh();
}

MountInfo MountObject::snapshot() const
{
	std::lock_guard lock(mutex_);
	return info_;
}

void MountObject::update(const MountInfo &info)
{
	MountInfo old;
	{
		std::lock_guard lock(mutex_);
		old = std::exchange(info_, info);
	}
	// Signals go out without our lock: a getter on the bus thread may be waiting for it.
	std::vector<std::string> changed;
	if (old.device != info.device)
		changed.push_back("Device");
	if (old.state != info.state)
		changed.push_back("State");
	if (!changed.empty())
		emitPropertiesChangedSignal(kInterface, changed);
	if (old.state != info.state)
		emitStateChanged(stateName(info.state), info.stateMessage);
}

void MountObject::OpenFd(sdbus::Result<sdbus::UnixFd> &&result, uint32_t flags)
{
	auto id = snapshot().id;
	if (!admit(state_, getObject(), result, fmt::format("OpenFd {:#x} on mount {}", flags, id)))
		return;
	// Captures the manager, not this: the object may go away while the worker runs.
	runAsync(state_, std::move(result), [&mounts = state_.context.mounts, id, flags]() -> r3d::ResultMsg<sdbus::UnixFd> {
		auto fd = mounts.openFd(id, flags);
		if (!fd)
			return r3d::unexpectedOf(fd.error());
		return sdbus::UnixFd(fd->release(), sdbus::adopt_fd);
	});
}

void MountObject::Unmount(sdbus::Result<> &&result)
{
	auto id = snapshot().id;
	if (!admit(state_, getObject(), result, fmt::format("Unmount mount {}", id)))
		return;
	runAsync(state_, std::move(result), [&mounts = state_.context.mounts, id] { return mounts.unmount(id); });
}

void MountObject::UnmountWithOptions(sdbus::Result<> &&result, std::map<std::string, sdbus::Variant> options)
{
	auto id = snapshot().id;
	if (!admit(state_, getObject(), result, fmt::format("Unmount mount {}", id)))
		return;
	auto parsed = unmountOptions(options);
	if (!parsed) {
		replyError(result, toDbusError(parsed.error()));
		return;
	}
	runAsync(state_, std::move(result),
		 [&mounts = state_.context.mounts, id, o = *parsed] { return mounts.unmount(id, o); });
}

std::string MountObject::Kind()
{
	return r3d::mount::kindName(snapshot().kind);
}

std::string MountObject::Id()
{
	return snapshot().id;
}

std::string MountObject::Device()
{
	return snapshot().device;
}

std::string MountObject::BackendUri()
{
	return snapshot().backendUri;
}

uint64_t MountObject::Size()
{
	return snapshot().size;
}

uint64_t MountObject::ChunkSize()
{
	return snapshot().chunkSize;
}

bool MountObject::ReadOnly()
{
	return snapshot().readOnly;
}

std::string MountObject::State()
{
	return stateName(snapshot().state);
}

std::map<std::string, uint64_t> MountObject::Statistics()
{
	return statisticsMap(state_.context.mounts.counters(snapshot().id).value_or(r3d::Counters{}));
}

} // namespace r3mapd::service
