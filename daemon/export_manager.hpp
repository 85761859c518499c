#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "base/counters.hpp"
#include "managed_request.hpp"
#include "mount/managed_region.hpp"
#include "mount/mount.hpp"
#include "pipeline_lease.hpp"
#include "registry.hpp"
#include "served_export.hpp"
#include "state_store.hpp"

namespace r3d {
class Runtime;
}

namespace r3mapd {

class AccessPolicy;
struct Config;

struct ExportRequest {
	std::string backendUri;
	std::string listen; ///< "HOST:PORT" or "unix:PATH"
	/// "nbd" (default) or "r3" (r3map's transport, what r3:// backends and migration talk).
	std::string protocol = "nbd";
	std::string name;   ///< export name
	std::string description;
	bool readOnly = false;
	/// Who asked: root may open any backend, others less (see openAllowedBackend()).
	uid_t callerUid = static_cast<uid_t>(-1);
	/// A managed export: a local cache in front of the backend (see openManagedRegion()).
	std::optional<ManagedRequest> managed;
	/// NBD over TLS: "off", "on" or "require"; empty: require with a certificate or PSK
	/// file, off without. Files only root may name (the daemon reads them as root).
	std::string tls;
	std::string tlsCert;
	std::string tlsKey;
	std::string tlsCa;  ///< clients must present a certificate signed by it
	std::string tlsPsk; ///< psktool's identity:hexkey lines, instead of a certificate
	std::string tokenFile; ///< r3 exports: clients must present its first line
};

struct StopOptions {
	/// A managed export skips the final push; the cache's journal keeps what is dirty.
	bool discardDirty = false;
};

/// A snapshot of one export.
struct ExportInfo {
	std::string id;
	std::string backendUri;
	std::string listen; ///< the bound address, with the port chosen for port 0
	std::string name;
	std::string protocol = "nbd";
	uint64_t size = 0;
	bool readOnly = false;
	r3d::mount::MountKind kind = r3d::mount::MountKind::Direct;
	/// A managed export's options as given (Managed1.Options), chunk-size resolved.
	std::map<std::string, std::string> managedOptions;
};

/// Hears about exports appearing and going away; never called with a manager lock held.
class ExportObserver
{
public:
	virtual ~ExportObserver() = default;
	virtual void exportAdded(const ExportInfo &info) = 0;
	virtual void exportRemoved(const std::string &id) = 0;
};

/// Owns every export by id: a ServedExport (NBD or r3) over a pipeline, or over a managed
/// region. start/stop block (backend open, bind, flush, push) and are meant for worker
/// threads. A UNIX socket is made 0660 and given to the access group, whose members may
/// connect. Ids continue from `state`'s counter; managed exports are journaled there and
/// come back with restore(), the others end with the daemon.
class ExportManager
{
public:
	/// Servers and network backends run on `runtime` when given (r3mapd's), else on their own.
	ExportManager(const Config &config, const AccessPolicy &access, ExportObserver &observer,
		      r3d::Runtime *runtime = nullptr, StateStore &state = StateStore::none());
	~ExportManager();
	ExportManager(const ExportManager &) = delete;
	ExportManager &operator=(const ExportManager &) = delete;

	r3d::ResultMsg<ExportInfo> start(const ExportRequest &request);
	/// Stops listening, ends the connections, flushes the backend. Busy while stopping. A
	/// managed export pushes what is dirty first, while it still serves, and goes on
	/// serving if that fails (BackendFailed).
	r3d::ResultMsg<void> stop(const std::string &id, const StopOptions &options = {});
	/// A managed export pushes everything dirty and returns once the remote has it.
	r3d::ResultMsg<void> sync(const std::string &id);
	/// Lends the export's pipeline (what its clients read and write through) to a memory
	/// region (export:ID); stop() is Busy while the lease lives. NotFound for an unknown
	/// id, Busy while it stops.
	r3d::ResultMsg<PipelineLease> lease(const std::string &id);
	/// A managed export's cache and sync state; nullopt for other exports and unknown ids.
	std::optional<r3d::mount::ManagedStatus> managedStatus(const std::string &id) const;

	/// Starts the managed exports journaled by the previous run again, under their ids
	/// and on their addresses, each through `defer` (inline without one). One that cannot
	/// start is logged and keeps its spec for the next start. Specs of other exports are
	/// dropped.
	void restore(const std::function<bool(std::function<void()>)> &defer = {});

	std::vector<ExportInfo> list() const;
	/// The export's counters; nullopt if there is no such export.
	std::optional<r3d::Counters> counters(const std::string &id) const;
	uint64_t activeConnections(const std::string &id) const;

	/// Stops everything, for shutdown; managed exports push and keep their specs.
	void stopAll();

private:
	struct Entry;

	r3d::ResultMsg<ExportInfo> start(const ExportRequest &request, std::optional<uint64_t> id);
	r3d::ResultMsg<void> stop(const std::string &id, const StopOptions &options, bool forget);
	r3d::ResultMsg<std::unique_ptr<ServedExport>> serve(const ExportRequest &request,
							     std::shared_ptr<r3d::ReadWriterAt> backend,
							     std::shared_ptr<r3d::nbd::MetaSource> meta);

	const Config &config_;
	const AccessPolicy &access_;
	ExportObserver &observer_;
	r3d::Runtime *runtime_;
	StateStore &state_;
	mutable std::mutex mutex_;
	Registry<Entry> exports_;
};

} // namespace r3mapd
