#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "access_policy.hpp"
#include "base/runtime.hpp"
#include "config.hpp"
#include "export_manager.hpp"
#include "migration_manager.hpp"
#include "mount_device.hpp"
#include "mount_manager.hpp"
#include "region_manager.hpp"
#include "service/bus_service.hpp"
#include "state_store.hpp"
#include "sync_manager.hpp"
#include "bus_check.hpp"
#include "watchdog.hpp"
#include "work_queue.hpp"

namespace r3mapd {

/// r3mapd: one io_context for signals and the watchdog, a bus thread that only admits
/// calls, workers for whatever blocks.
///
/// Shutdown (SIGTERM, SIGINT, or the bus going away): STOPPING=1 → refuse new calls →
/// finish the calls in flight → flush and unmount every mount → stop every export →
/// release the bus name.
class Daemon
{
public:
	/// `attach(runtime)` makes the AttachFn, given the daemon's Runtime.
	using AttachFactory = std::function<AttachFn(r3d::Runtime &runtime)>;
	Daemon(Config config, AttachFactory attach, std::unique_ptr<StateStore> state = nullptr);
	~Daemon();
	Daemon(const Daemon &) = delete;
	Daemon &operator=(const Daemon &) = delete;

	/// Serves until shut down; returns the process exit code.
	int run();

	/// The r3mapd program: arguments, configuration, run().
	static int main(int argc, char **argv);

private:
	void shutdown(int exitCode);
	void watchDevices();

	Config config_;
	std::unique_ptr<StateStore> state_;
	/// Network I/O and blocking data-path work of every mount and export; declared before
	/// them, so it outlives them.
	r3d::Runtime runtime_;
	boost::asio::io_context io_;
	boost::asio::signal_set signals_;
	boost::asio::steady_timer deviceTimer_;
	Watchdog watchdog_;
	AccessPolicy access_;
	service::BusService service_;
	MountManager mounts_;
	ExportManager exports_;
	MigrationManager migrations_;
	SyncManager syncs_;
	RegionManager regions_;
	WorkQueue work_;
	BusCheck busCheck_;
	int exitCode_ = 0;
	bool stopping_ = false;
};

} // namespace r3mapd
