#pragma once

#include <atomic>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <r3d/result.hpp>

#include "access_policy.hpp"
#include "service/bus_service.hpp"

namespace sdbus {
class IObject;
}

namespace r3mapd::service {

inline constexpr const char *kRootPath = "/org/r3map";
inline constexpr const char *kMountsPath = "/org/r3map/mounts/";
inline constexpr const char *kExportsPath = "/org/r3map/exports/";
inline constexpr const char *kMigrationsPath = "/org/r3map/migrations/";
inline constexpr const char *kSyncsPath = "/org/r3map/syncs/";

/// Shared by every object of the service.
struct ServiceState {
	explicit ServiceState(ServiceContext c) : context(std::move(c)) {}

	ServiceContext context;
	std::atomic<bool> accepting{ true };

	/// On the bus thread, before a mutating call does anything: the daemon must still
	/// accept calls and the sender must pass the AccessPolicy. Logs the call.
	r3d::ResultMsg<Caller> admit(const sdbus::IObject &object, std::string_view action) const;
};

/// For destructors of managed objects: announces InterfacesRemoved for `interfaces` (the
/// object's own and those of other objects at its path) and unregisters, tolerating a
/// bus that is already gone.
template <class Object>
void withdraw(Object &object, const std::vector<std::string> &interfaces) noexcept
{
	try {
		object.emitInterfacesRemovedSignal(interfaces);
	} catch (const std::exception &) {
		// Nobody can hear it anyway.
	}
	object.unregisterAdaptor();
}

} // namespace r3mapd::service
