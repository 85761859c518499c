#pragma once

#include <cstdint>
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
#include "served_export.hpp"
#include "registry.hpp"

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
};

/// Hears about exports appearing and going away; never called with a manager lock held.
class ExportObserver
{
public:
	virtual ~ExportObserver() = default;
	virtual void exportAdded(const ExportInfo &info) = 0;
	virtual void exportRemoved(const std::string &id) = 0;
};

/// Owns every export by id: a ServedExport (NBD or r3) over a pipeline.
/// start/stop block (backend open, bind, flush) and are meant for worker threads.
/// A UNIX socket is made 0660 and given to the access group, whose members may connect.
class ExportManager
{
public:
	/// Servers and network backends run on `runtime` when given (r3mapd's), else on their own.
	ExportManager(const Config &config, const AccessPolicy &access, ExportObserver &observer,
		      r3d::Runtime *runtime = nullptr);
	~ExportManager();
	ExportManager(const ExportManager &) = delete;
	ExportManager &operator=(const ExportManager &) = delete;

	r3d::ResultMsg<ExportInfo> start(const ExportRequest &request);
	/// Stops listening, ends the connections, flushes the backend. Busy while stopping.
	r3d::ResultMsg<void> stop(const std::string &id);

	std::vector<ExportInfo> list() const;
	/// The export's counters; nullopt if there is no such export.
	std::optional<r3d::Counters> counters(const std::string &id) const;
	uint64_t activeConnections(const std::string &id) const;

	/// Stops everything, for shutdown.
	void stopAll();

private:
	struct Entry;

	r3d::ResultMsg<std::unique_ptr<ServedExport>> serve(const ExportRequest &request,
							     std::shared_ptr<r3d::ReadWriterAt> backend);

	const Config &config_;
	const AccessPolicy &access_;
	ExportObserver &observer_;
	r3d::Runtime *runtime_;
	mutable std::mutex mutex_;
	Registry<Entry> exports_;
};

} // namespace r3mapd
