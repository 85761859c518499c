#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <sdbus-c++/sdbus-c++.h>

#include "exit_codes.hpp"
#include "proxies.hpp"

namespace r3ctl {

using PropertyMap = std::map<std::string, sdbus::Variant>;
/// ObjectManager.GetManagedObjects(): path → interface → properties.
using ManagedObjects = std::map<sdbus::ObjectPath, std::map<std::string, PropertyMap>>;

/// r3ctl's own name for "no system bus to connect to".
inline constexpr const char *kNoBusError = "org.r3map.r3ctl.Error.NoBus";

/// What went wrong, for the user: an exit code, the D-Bus error name and a sentence.
struct Failure {
	int exitCode;
	std::string name;
	std::string message;
};

/// Translates a D-Bus error into what r3ctl tells the user (daemon not running, access
/// denied, ...).
Failure describe(const sdbus::Error &error);

/// r3ctl's connection to r3mapd on the system bus ($DBUS_SYSTEM_BUS_ADDRESS).
class Client
{
public:
	/// Connects; throws sdbus::Error when there is no bus.
	explicit Client(std::chrono::seconds timeout);

	ManagerProxy &manager() { return *manager_; }
	std::unique_ptr<MountProxy> mount(const std::string &path);
	std::unique_ptr<ExportProxy> exportAt(const std::string &path);
	std::unique_ptr<ManagedProxy> managed(const std::string &path);
	std::unique_ptr<MigrationProxy> migration(const std::string &path);
	std::unique_ptr<SyncProxy> sync(const std::string &path);
	/// Whether the object at `path` implements org.r3map.Managed1.
	bool isManaged(const std::string &path);

	/// Every mount and export with its properties, in one call.
	ManagedObjects objects();

	/// A mount's object path from "ID", "/dev/nbdN", "nbdN" or the path itself; throws
	/// sdbus::Error org.r3map.Error.NotFound when nothing matches.
	std::string resolveMount(const std::string &idOrDevice);
	/// An export's object path from "ID" or the path itself.
	std::string resolveExport(const std::string &id);

	/// Runs the handlers of the signals that came (r3ctl has no event loop), waiting up to
	/// `timeout` for one if none is queued.
	void dispatch(std::chrono::milliseconds timeout);

private:
	std::unique_ptr<sdbus::IConnection> connection_;
	std::unique_ptr<ManagerProxy> manager_;
};

} // namespace r3ctl
