#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>

#include "r3_security.hpp"
#include "registry.hpp"

namespace r3d {
class Runtime;
}

namespace r3mapd {

/// Manager1.StartSync: push a file to r3:// destinations in rounds.
struct SyncStartRequest {
	std::string source;                    ///< an absolute path of a file or block device, or a mount id
	std::vector<std::string> destinations; ///< r3://HOST:PORT[/NAME][?tls-ca=F&token-file=F...]
	std::string hub;                       ///< one more destination, a hub's; may be empty
	std::chrono::milliseconds interval{ 0 }; ///< 0: rounds only at the start and on SyncNow
	uint64_t chunkSize = 1 << 20;
	bool compress = false; ///< offer zstd chunks to the destinations
	uid_t callerUid = static_cast<uid_t>(-1);
};

/// Manager1.ServeSync and StartSyncHub: receive pushes into a directory (and fan them out).
struct SyncServeRequest {
	std::string listen;                    ///< HOST:PORT, loopback unless TLS
	std::string dir;                       ///< an absolute path of an existing directory
	std::vector<std::string> destinations; ///< a hub's; empty: a plain receiver
	bool hub = false;
	bool renameApply = false;
	bool verify = false;
	bool compress = false; ///< a hub: offer zstd chunks to its destinations
	R3Security security;
	uid_t callerUid = static_cast<uid_t>(-1);
};

/// What does not change of a sync.
struct SyncInfo {
	std::string id;
	std::string role;   ///< "push", "serve" or "hub"
	std::string source; ///< the file (push) or the directory (serve, hub)
	std::string listen; ///< a serve's or hub's bound address; empty for a push
	std::chrono::milliseconds interval{ 0 };
	std::vector<std::string> destinations; ///< as given, without their parameters
};

struct SyncDestinationStatus {
	std::string uri;
	uint64_t ackedGeneration = 0;
	uint64_t lag = 0;   ///< push: rounds since it last acknowledged one; hub: generations behind
	uint64_t amount = 0; ///< push: chunk bytes sent to it; hub: chunks it still lacks
	std::string state = "pending"; ///< pending, ok or failed
	std::string error;
};

/// A sync's moving parts, as Sync1's properties show them.
struct SyncStatus {
	std::string state;
	uint64_t lastSync = 0; ///< unix seconds; 0: none yet
	uint64_t rounds = 0;
	uint64_t generation = 0;
	uint64_t bytesSent = 0;
	uint64_t chunksChanged = 0;
	uint64_t sourceBytes = 0;
	std::vector<SyncDestinationStatus> destinations;
	std::string lastError;
};

/// Hears about syncs appearing and going away; never called with the lock held.
class SyncObserver
{
public:
	virtual ~SyncObserver() = default;
	virtual void syncAdded(const SyncInfo &info) = 0;
	virtual void syncRemoved(const std::string &id) = 0;
};

/// Owns the daemon's pushes, receivers and hubs by id. The sync logic is libr3d's
/// (sync/sync_push.hpp, sync_service.hpp, sync_hub.hpp); this keeps them, runs a push's
/// rounds on a thread of its own and counts what they did. start/serve/syncNow/stop block
/// (file checks, bind, a whole round) and are meant for worker threads. Not journaled.
class SyncManager
{
public:
	/// The device (/dev/nbdN) of the mount `id`: empty while it attaches; nothing if there
	/// is no such mount.
	using MountDevice = std::function<std::optional<std::string>(const std::string &id)>;

	SyncManager(SyncObserver &observer, MountDevice mountDevice);
	~SyncManager();
	SyncManager(const SyncManager &) = delete;
	SyncManager &operator=(const SyncManager &) = delete;

	r3d::ResultMsg<SyncInfo> start(const SyncStartRequest &request);
	r3d::ResultMsg<SyncInfo> serve(const SyncServeRequest &request);
	/// A push runs a round now; returns once a round that started after the call is done.
	r3d::ResultMsg<void> syncNow(const std::string &id);
	/// Ends it; the object goes away.
	r3d::ResultMsg<void> stop(const std::string &id);

	std::optional<SyncStatus> status(const std::string &id) const;
	std::vector<SyncInfo> list() const;
	void stopAll();

private:
	struct Entry;

	SyncInfo add(std::shared_ptr<Entry> e);
	r3d::ResultMsg<std::string> sourcePath(const SyncStartRequest &request, std::string &name) const;

	SyncObserver &observer_;
	MountDevice mountDevice_;
	/// The syncs' own links, servers (whose sessions write the copies on their strands)
	/// and hashing threads: the daemon's Runtime serves kernel devices and must not wait
	/// behind a copy's fsync or a whole file being hashed. Declared before the entries.
	std::unique_ptr<r3d::Runtime> runtime_;
	mutable std::mutex mutex_;
	Registry<Entry> entries_;
};

} // namespace r3mapd
