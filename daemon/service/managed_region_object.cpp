#include "service/managed_region_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"

namespace r3mapd::service {

ManagedRegionObject::ManagedRegionObject(sdbus::IConnection &connection, ServiceState &state, std::string path,
					 std::string what, std::map<std::string, std::string> options, StatusFn statusFn,
					 SyncFn syncFn)
	: AdaptorInterfaces(connection, std::move(path)), state_(state), what_(std::move(what)),
	  options_(std::move(options)), status_(std::move(statusFn)), sync_(std::move(syncFn))
{
	registerAdaptor();
	// The values InterfacesAdded carries: refresh() signals what changes from here.
	signalled_ = status();
}

ManagedRegionObject::~ManagedRegionObject()
{
	unregisterAdaptor();
}

r3d::mount::ManagedStatus ManagedRegionObject::status() const
{
	auto s = status_();
	if (s)
		return *s;
	// Not open yet: nothing is local, so it is syncing as soon as it is.
	r3d::mount::ManagedStatus none;
	none.state = r3d::mount::SyncState::Syncing;
	return none;
}

std::string ManagedRegionObject::State()
{
	return r3d::mount::syncStateName(status().state);
}

void ManagedRegionObject::refresh()
{
	auto after = status();
	std::vector<std::string> changed;
	{
		std::lock_guard lock(mutex_);
		if (signalled_) {
			const auto &before = *signalled_;
			auto check = [&](const char *name, auto member) {
				if (before.*member != after.*member)
					changed.push_back(name);
			};
			check("State", &r3d::mount::ManagedStatus::state);
			check("LocalBytes", &r3d::mount::ManagedStatus::localBytes);
			check("DirtyBytes", &r3d::mount::ManagedStatus::dirtyBytes);
			check("PulledBytes", &r3d::mount::ManagedStatus::pulledBytes);
			check("PushedBytes", &r3d::mount::ManagedStatus::pushedBytes);
			check("PullRate", &r3d::mount::ManagedStatus::pullRate);
			check("PushRate", &r3d::mount::ManagedStatus::pushRate);
			check("LastError", &r3d::mount::ManagedStatus::lastError);
			check("CacheDir", &r3d::mount::ManagedStatus::cache);
			check("Resumed", &r3d::mount::ManagedStatus::resumed);
		}
		signalled_ = after;
	}
	if (!changed.empty())
		emitPropertiesChangedSignal(kInterface, changed);
}

void ManagedRegionObject::Sync(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("Sync {}", what_)))
		return;
	runAsync(state_, std::move(result), sync_);
}

} // namespace r3mapd::service
