#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "base/counters.hpp"
#include "nbd/stats.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::mount {
class ManagedRegion;
}

namespace r3serve {

struct ServeOptions;

/// A serving run's counters by name, in the order of the stats file.
using Counters = r3d::Counters;

/// The counters of an NBD server under their stats-file names.
Counters nbdCounters(const r3d::nbd::Stats &stats);

/// One way r3serve serves (NBD, r3, a kernel device). runServeLoop() drives it:
/// start(), print address(), wait for signals, stop(), sync(), report counters().
class ServeMode
{
public:
	enum class Stop {
		Stopped, ///< serving ended
		Failed,  ///< serving ended, with an error already logged
		Busy,    ///< still serving: stopping now would lose data; stop(true) forces it
	};

	virtual ~ServeMode() = default;

	/// Opens the backends and starts serving; the message is ready to print after "r3serve: ".
	virtual r3d::ResultMsg<void> start() = 0;
	/// What r3serve prints once clients can come: the address to connect to, or the device.
	virtual std::string address() const = 0;
	/// The name the exit report logs the counters under.
	virtual std::string what() const { return "served"; }
	virtual Counters counters() const = 0;
	/// Checked between signals: empty while serving, else why serving ended on its own.
	virtual std::string failure() const { return {}; }
	/// Ends serving on SIGTERM/SIGINT (or after a failure(), with force).
	virtual Stop stop(bool force) = 0;
	/// After stop(): makes what clients wrote durable. False if that failed (logged).
	virtual bool sync() { return true; }
};

/// An export opened from the command line.
struct OpenedExport {
	std::string name;
	std::shared_ptr<r3d::ReadWriterAt> backend;
	/// With --managed: the region behind `backend` (its meta contexts, its final push).
	std::shared_ptr<r3d::mount::ManagedRegion> managed;
};

/// Opens every export of `o` and logs each under `kind` ("export", "r3 export").
/// Each gets the pipeline its callers need (any offset); network backends run on `runtime`.
r3d::ResultMsg<std::vector<OpenedExport>> openExports(const ServeOptions &o, const char *kind, r3d::Runtime &runtime);

/// `counters` followed by the counters of the managed exports among `exports` (pulls,
/// pushes, what is local and dirty).
Counters withManagedCounters(Counters counters, const std::vector<OpenedExport> &exports);

/// Flushes the exports that can be written; false (and logged) if one fails. A managed
/// export pushes every dirty chunk to its remote first, with progress in the log.
bool syncExports(const ServeOptions &o, const std::vector<OpenedExport> &exports);

} // namespace r3serve
