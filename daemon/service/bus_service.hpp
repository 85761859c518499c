#pragma once

#include <functional>
#include <memory>
#include <string>

#include <r3d/result.hpp>

#include "export_manager.hpp"
#include "migration_manager.hpp"
#include "mount_manager.hpp"
#include "region_manager.hpp"
#include "sync_manager.hpp"

namespace r3mapd {

class AccessPolicy;
class WorkQueue;

namespace service {

/// What the D-Bus objects need from the daemon.
struct ServiceContext {
	MountManager &mounts;
	ExportManager &exports;
	const AccessPolicy &access;
	WorkQueue &work;
	std::string version;
	std::function<std::string()> logLevel;
	std::function<r3d::ResultMsg<void>(const std::string &level)> setLogLevel;
	/// Memory regions of apps (Region1 objects); null: none are served.
	RegionManager *regions = nullptr;
	/// Live migrations (Migration1 objects); null: Seed and Pull fail with NotSupported.
	MigrationManager *migrations = nullptr;
	/// Push syncs (Sync1 objects); null: StartSync, ServeSync and StartSyncHub fail with NotSupported.
	SyncManager *syncs = nullptr;
};

/// r3mapd on the system bus: org.r3map.r3mapd with /org/r3map (Manager1, ObjectManager)
/// and one object per mount and export. The sdbus-c++ types stay behind this class.
///
/// The bus thread only validates, checks the caller and posts to the WorkQueue; the worker
/// completes the call. Objects appear and disappear through the observer callbacks.
class BusService final : public MountObserver, public ExportObserver, public RegionObserver, public MigrationObserver,
				 public SyncObserver
{
public:
	static constexpr const char *kBusName = "org.r3map.r3mapd";

	BusService();
	~BusService() override;
	BusService(const BusService &) = delete;
	BusService &operator=(const BusService &) = delete;

	/// Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS), publishes /org/r3map, owns
	/// the name and starts the bus thread. `onBusLost` runs on the bus thread if the
	/// connection breaks later.
	r3d::ResultMsg<void> start(ServiceContext context, std::function<void(const std::string &)> onBusLost);
	/// From now on every mutating call fails with ShuttingDown.
	void stopAccepting();
	/// Releases the name, stops the bus thread and drops every object. Idempotent.
	void stop();

	/// Managed1 PropertiesChanged of every managed mount and export, for what changed since
	/// the last call; the daemon calls it once a second from its io_context.
	void refreshManaged();

	/// Asks dbus-daemon for its id; `answered` runs on the bus thread when the reply (or an
	/// error reply) arrives, which needs both dbus-daemon and our bus thread to be alive.
	void probe(std::function<void()> answered);

	void mountAdded(const MountInfo &info) override;
	void mountChanged(const MountInfo &info) override;
	void mountRemoved(const std::string &id) override;
	void exportAdded(const ExportInfo &info) override;
	void exportRemoved(const std::string &id) override;
	void regionAdded(const RegionInfo &info) override;
	void regionRemoved(const std::string &id) override;
	void migrationAdded(const MigrationInfo &info) override;
	void migrationRemoved(const std::string &id) override;
	void migrationPhaseChanged(const std::string &id, const std::string &phase) override;
	void migrationFinalizeRequested(const std::string &id) override;
	void migrationFinalizeAborted(const std::string &id, const std::string &reason) override;
	void syncAdded(const SyncInfo &info) override;
	void syncRemoved(const std::string &id) override;

	struct Impl;

private:
	std::unique_ptr<Impl> impl_;
};

} // namespace service
} // namespace r3mapd
