#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include "export1_proxy.h"
#include "managed1_proxy.h"
#include "manager1_proxy.h"
#include "migration1_proxy.h"
#include "mount1_proxy.h"
#include "sync1_proxy.h"

namespace r3ctl {

inline constexpr const char *kBusName = "org.r3map.r3mapd";
inline constexpr const char *kManagerPath = "/org/r3map";
inline constexpr const char *kMountsPath = "/org/r3map/mounts/";
inline constexpr const char *kExportsPath = "/org/r3map/exports/";
inline constexpr const char *kMigrationsPath = "/org/r3map/migrations/";
inline constexpr const char *kSyncsPath = "/org/r3map/syncs/";
inline constexpr const char *kRegionsPath = "/org/r3map/regions/";
inline constexpr const char *kRegionInterface = "org.r3map.Region1";

// Proxies for synchronous calls: r3ctl runs no event loop, so the signal handlers the
// generated classes insist on are empty.

/// /org/r3map: Manager1, ObjectManager, Properties.
class ManagerProxy final : public sdbus::ProxyInterfaces<org::r3map::Manager1_proxy, sdbus::ObjectManager_proxy,
							  sdbus::Properties_proxy>
{
public:
	explicit ManagerProxy(sdbus::IConnection &connection) : ProxyInterfaces(connection, kBusName, kManagerPath)
	{
		registerProxy();
	}
	~ManagerProxy() { unregisterProxy(); }

private:
	void onInterfacesAdded(const sdbus::ObjectPath &,
			       const std::map<std::string, std::map<std::string, sdbus::Variant>> &) override
	{
	}
	void onInterfacesRemoved(const sdbus::ObjectPath &, const std::vector<std::string> &) override {}
	void onPropertiesChanged(const std::string &, const std::map<std::string, sdbus::Variant> &,
				 const std::vector<std::string> &) override
	{
	}
};

/// /org/r3map/mounts/ID.
class MountProxy final : public sdbus::ProxyInterfaces<org::r3map::Mount1_proxy, sdbus::Properties_proxy>
{
public:
	MountProxy(sdbus::IConnection &connection, std::string path)
		: ProxyInterfaces(connection, kBusName, std::move(path))
	{
		registerProxy();
	}
	~MountProxy() { unregisterProxy(); }

private:
	void onStateChanged(const std::string &, const std::string &) override {}
	void onPropertiesChanged(const std::string &, const std::map<std::string, sdbus::Variant> &,
				 const std::vector<std::string> &) override
	{
	}
};

/// /org/r3map/exports/ID.
class ExportProxy final : public sdbus::ProxyInterfaces<org::r3map::Export1_proxy, sdbus::Properties_proxy>
{
public:
	ExportProxy(sdbus::IConnection &connection, std::string path)
		: ProxyInterfaces(connection, kBusName, std::move(path))
	{
		registerProxy();
	}
	~ExportProxy() { unregisterProxy(); }

private:
	void onPropertiesChanged(const std::string &, const std::map<std::string, sdbus::Variant> &,
				 const std::vector<std::string> &) override
	{
	}
};

/// /org/r3map/migrations/ID.
class MigrationProxy final : public sdbus::ProxyInterfaces<org::r3map::Migration1_proxy, sdbus::Properties_proxy>
{
public:
	MigrationProxy(sdbus::IConnection &connection, std::string path)
		: ProxyInterfaces(connection, kBusName, std::move(path))
	{
		registerProxy();
	}
	~MigrationProxy() { unregisterProxy(); }

private:
	// r3ctl --wait is woken by PhaseChanged (Client::dispatch()) and then reads the status;
	// an app that pauses for a handover listens to the others.
	void onPhaseChanged(const std::string &) override {}
	void onFinalizeRequested() override {}
	void onFinalizeAborted(const std::string &) override {}
	void onPropertiesChanged(const std::string &, const std::map<std::string, sdbus::Variant> &,
				 const std::vector<std::string> &) override
	{
	}
};

/// /org/r3map/syncs/ID.
class SyncProxy final : public sdbus::ProxyInterfaces<org::r3map::Sync1_proxy, sdbus::Properties_proxy>
{
public:
	SyncProxy(sdbus::IConnection &connection, std::string path) : ProxyInterfaces(connection, kBusName, std::move(path))
	{
		registerProxy();
	}
	~SyncProxy() { unregisterProxy(); }

private:
	void onPropertiesChanged(const std::string &, const std::map<std::string, sdbus::Variant> &,
				 const std::vector<std::string> &) override
	{
	}
};

/// Managed1 on a managed mount or export (its path is the mount's or the export's).
class ManagedProxy final : public sdbus::ProxyInterfaces<org::r3map::Managed1_proxy, sdbus::Properties_proxy>
{
public:
	ManagedProxy(sdbus::IConnection &connection, std::string path)
		: ProxyInterfaces(connection, kBusName, std::move(path))
	{
		registerProxy();
	}
	~ManagedProxy() { unregisterProxy(); }

private:
	void onPropertiesChanged(const std::string &, const std::map<std::string, sdbus::Variant> &,
				 const std::vector<std::string> &) override
	{
	}
};

} // namespace r3ctl
