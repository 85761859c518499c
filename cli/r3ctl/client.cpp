#include "client.hpp"

#include <poll.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace r3ctl {

Failure describe(const sdbus::Error &e)
{
	const std::string &name = e.getName();
	if (name == "org.freedesktop.DBus.Error.ServiceUnknown" || name == "org.freedesktop.DBus.Error.NameHasNoOwner")
		return { kExitUnreachable, name, fmt::format("r3mapd is not running (nothing owns {} on the system bus)", kBusName) };
	if (name == "org.freedesktop.DBus.Error.AccessDenied")
		return { kExitDenied, name,
			 fmt::format("access denied by the bus policy: only root and members of group r3map may call "
				     "r3mapd ({})",
				     e.getMessage()) };
	if (name == "org.r3map.Error.NotPermitted")
		return { kExitDenied, name, e.getMessage() };
	if (name == "org.r3map.Error.NotFound")
		return { kExitNotFound, name, e.getMessage() };
	if (name == "org.freedesktop.DBus.Error.UnknownObject")
		return { kExitNotFound, name, "no such mount or export (it may have just gone away)" };
	if (name == "org.freedesktop.DBus.Error.NoReply" || name == "org.freedesktop.DBus.Error.Timeout")
		return { kExitFailed, name, fmt::format("r3mapd did not answer in time: {}", e.getMessage()) };
	if (name == kNoBusError) {
		const char *address = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
		return { kExitUnreachable, name,
			 fmt::format("cannot talk to the system bus at {}: {}",
				     address ? address : "unix:path=/run/dbus/system_bus_socket", e.getMessage()) };
	}
	// sd-bus names errno failures System.Error.E*: the connection broke.
	if (name.starts_with("System.Error."))
		return { kExitUnreachable, name, fmt::format("lost the system bus: {}", e.getMessage()) };
	return { kExitFailed, name, e.getMessage() };
}

Client::Client(std::chrono::seconds timeout) : connection_(sdbus::createSystemBusConnection())
{
	connection_->setMethodCallTimeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
	manager_ = std::make_unique<ManagerProxy>(*connection_);
}

std::unique_ptr<MountProxy> Client::mount(const std::string &path)
{
	return std::make_unique<MountProxy>(*connection_, path);
}

std::unique_ptr<ExportProxy> Client::exportAt(const std::string &path)
{
	return std::make_unique<ExportProxy>(*connection_, path);
}

void Client::dispatch(std::chrono::milliseconds timeout)
{
	bool any = false;
	while (connection_->processPendingRequest())
		any = true;
	if (any)
		return;
	auto poll = connection_->getEventLoopPollData();
	int wait = static_cast<int>(timeout.count());
	if (poll.timeout_usec != UINT64_MAX)
		wait = std::min<int64_t>(wait, static_cast<int64_t>(poll.timeout_usec / 1000));
	pollfd p{ poll.fd, static_cast<short>(poll.events), 0 };
	if (::poll(&p, 1, std::max(wait, 0)) > 0)
		while (connection_->processPendingRequest()) {
		}
}

std::unique_ptr<MigrationProxy> Client::migration(const std::string &path)
{
	return std::make_unique<MigrationProxy>(*connection_, path);
}

std::unique_ptr<SyncProxy> Client::sync(const std::string &path)
{
	return std::make_unique<SyncProxy>(*connection_, path);
}

std::unique_ptr<ManagedProxy> Client::managed(const std::string &path)
{
	return std::make_unique<ManagedProxy>(*connection_, path);
}

bool Client::isManaged(const std::string &path)
{
	auto objs = objects();
	auto it = objs.find(sdbus::ObjectPath(path));
	return it != objs.end() && it->second.count(org::r3map::Managed1_proxy::INTERFACE_NAME) > 0;
}

ManagedObjects Client::objects()
{
	return manager_->GetManagedObjects();
}

std::string Client::resolveMount(const std::string &idOrDevice)
{
	if (idOrDevice.starts_with(kMountsPath))
		return idOrDevice;
	bool device = idOrDevice.starts_with("/dev/") || idOrDevice.starts_with("nbd");
	for (const auto &[path, interfaces] : objects()) {
		auto mount = interfaces.find(org::r3map::Mount1_proxy::INTERFACE_NAME);
		if (mount == interfaces.end())
			continue;
		const auto &props = mount->second;
		std::string id = props.at("Id").get<std::string>();
		std::string dev = props.at("Device").get<std::string>();
		if ((!device && id == idOrDevice) || (device && !dev.empty() && (dev == idOrDevice || dev == "/dev/" + idOrDevice)))
			return path;
	}
	throw sdbus::Error("org.r3map.Error.NotFound", fmt::format("no mount '{}' (see r3ctl ls)", idOrDevice));
}

std::string Client::resolveExport(const std::string &id)
{
	if (id.starts_with(kExportsPath))
		return id;
	auto objs = objects();
	std::string path = kExportsPath + id;
	if (!objs.count(sdbus::ObjectPath(path)))
		throw sdbus::Error("org.r3map.Error.NotFound", fmt::format("no export '{}' (see r3ctl exports)", id));
	return path;
}

} // namespace r3ctl
