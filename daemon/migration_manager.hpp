#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>

#include "migration/migration_progress.hpp"
#include "mount_device.hpp"
#include "pipeline_lease.hpp"
#include "r3_security.hpp"
#include "registry.hpp"

namespace r3d {
class Runtime;
}

namespace r3mapd {

class AccessPolicy;
struct Config;

/// Manager1.Seed: make a backend or a live mount a migration source.
struct SeedRequest {
	/// A backend URI (its front is the writable side), or SCHEME:ID of a lender (mount:3):
	/// that object's I/O is diverted through the seeder's front.
	std::string backendUri;
	std::string listen;       ///< the seeder's r3 address, HOST:PORT (loopback unless TLS)
	std::string exportListen; ///< where front() is served over NBD; empty: not served
	std::string migrationId;  ///< empty: the seeder picks one
	std::string onFinalize;   ///< run as the caller (sh -c) at finalize, before the lock; empty: none
	/// Instead of onFinalize: announce FinalizeRequested and wait for answerFinalize().
	bool finalizeSignal = false;
	R3Security security;      ///< TLS and token of the seeder's server (root callers)
	uid_t callerUid = static_cast<uid_t>(-1);
};

/// Manager1.Pull: pull r3://HOST:PORT/ID into memory and serve the region on a kernel
/// device, or over NBD.
struct PullRequest {
	std::string source;       ///< r3://HOST:PORT/ID[?tls-ca=F&token-file=F...]
	std::string exportListen; ///< HOST:PORT or unix:PATH; empty: a kernel device
	std::chrono::nanoseconds downtime = std::chrono::milliseconds(50);
	unsigned maxRounds = 30;
	uint64_t rate = 0;        ///< bytes per second; 0: unlimited
	bool autoFinalize = true;
	uid_t callerUid = static_cast<uid_t>(-1);
};

/// A snapshot of one migration; the moving parts are in progress().
struct MigrationInfo {
	std::string id;
	std::string role;          ///< "seeder" or "leecher"
	std::string source;        ///< the backend URI (seeder) or r3:// URI (leecher)
	std::string listen;        ///< the seeder's bound r3 address; empty for a leecher
	std::string migrationId;
	std::string exportAddress; ///< where the region is served over NBD; empty: nowhere
	std::string device;        ///< a leecher's kernel device, "/dev/nbdN"; empty: none
};

/// Hears about migrations appearing and going away; never called with the lock held.
class MigrationObserver
{
public:
	virtual ~MigrationObserver() = default;
	virtual void migrationAdded(const MigrationInfo &info) = 0;
	virtual void migrationRemoved(const std::string &id) = 0;
	/// The phase moved (r3d::migration::phaseName()); called from the migration's threads.
	virtual void migrationPhaseChanged(const std::string &id, const std::string &phase) = 0;
	/// A seeder with finalizeSignal: a leecher asks for ownership; answerFinalize() is awaited.
	virtual void migrationFinalizeRequested(const std::string &id) = 0;
	/// After migrationFinalizeRequested the handover did not go through: the app may go on.
	virtual void migrationFinalizeAborted(const std::string &id, const std::string &reason) = 0;
};

/// Owns the daemon's seeders and leechers by id, each with the device or NBD export of its
/// region.
/// seed/pull/cancel block (backend open, connect, bind) and are meant for worker threads.
/// Migrations are not journaled: they end with the daemon.
class MigrationManager
{
public:
	/// `attach` brings up leechers' kernel devices.
	MigrationManager(const Config &config, const AccessPolicy &access, MigrationObserver &observer,
			 r3d::Runtime &runtime, AttachFn attach);
	~MigrationManager();
	MigrationManager(const MigrationManager &) = delete;
	MigrationManager &operator=(const MigrationManager &) = delete;

	/// Seed sources "SCHEME:ID" are lent by `lender` (given the ID); the lease must carry a
	/// diverter. Before any seed().
	void lendFrom(const std::string &scheme, PipelineLender lender) { lenders_[scheme] = std::move(lender); }

	r3d::ResultMsg<MigrationInfo> seed(const SeedRequest &request);
	r3d::ResultMsg<MigrationInfo> pull(const PullRequest &request);
	/// A leecher with finalize manual: take ownership now. NotSupported for a seeder.
	r3d::ResultMsg<void> finalize(const std::string &id);
	/// The app's answer to FinalizeRequested on a seeder with finalizeSignal, from the
	/// seeder's caller or root (`callerUid`).
	r3d::ResultMsg<void> answerFinalize(const std::string &id, bool proceed, std::string reason, uid_t callerUid);
	/// Stops serving and ends the seeder or leecher; the object goes away. Busy while a
	/// leecher's device is held (a filesystem mounted on it): it stays.
	r3d::ResultMsg<void> cancel(const std::string &id);

	std::optional<r3d::migration::MigrationProgress> progress(const std::string &id) const;
	std::vector<MigrationInfo> list() const;
	void stopAll();

private:
	struct Entry;

	r3d::ResultMsg<MigrationInfo> add(std::shared_ptr<Entry> e);
	/// The entry of `id` unless it is missing or being cancelled.
	std::shared_ptr<Entry> live(const std::string &id) const;
	/// PhaseChanged for the entry's progress callbacks.
	r3d::migration::ProgressCallback phaseWatch(Entry &e);

	const Config &config_;
	const AccessPolicy &access_;
	MigrationObserver &observer_;
	r3d::Runtime &runtime_;
	AttachFn attach_;
	std::map<std::string, PipelineLender> lenders_;
	/// The lenders' diverters being seeded: one seed each at a time.
	std::mutex seedingMutex_;
	std::set<const void *> seeding_;
	mutable std::mutex mutex_;
	Registry<Entry> entries_;
};

} // namespace r3mapd
