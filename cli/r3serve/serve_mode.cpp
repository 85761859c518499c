#include "serve_mode.hpp"

#include <r3d/log.hpp>

#include "serve_options.hpp"
#include <chrono>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/size.hpp>

#include "mount/managed_region.hpp"
#include "stages/pipeline.hpp"

namespace r3serve {

Counters nbdCounters(const r3d::nbd::Stats &stats)
{
	Counters counters;
	// The stats file's keys: the counters without the active_connections gauge.
	r3d::nbd::forEachCounter(stats, [&](const char *name, uint64_t value) { counters.emplace_back(name, value); });
	return counters;
}

namespace {

/// Logs a long operation's progress every few seconds.
r3d::mount::Progress logProgress(const char *what)
{
	auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
	return [what, last](uint64_t done, uint64_t left) {
		auto now = std::chrono::steady_clock::now();
		if (now - *last >= std::chrono::seconds(2)) {
			*last = now;
			r3d::log::get("r3serve")->info("{}: {} done, {} to go", what, r3d::formatSize(done),
						       r3d::formatSize(left));
		}
		return true;
	};
}

r3d::ResultMsg<OpenedExport> openManaged(const ServeOptions &o, const std::string &name, const std::string &uri,
					 r3d::Runtime &runtime)
{
	// One call to a remote that stopped answering fails within remote-timeout, too.
	auto remote = r3d::openBackend(uri, &runtime, r3d::OpenDefaults{ o.managedOptions.remoteTimeout });
	if (!remote)
		return r3d::unexpectedOf(remote.error());
	auto region = r3d::mount::ManagedRegion::open(std::move(*remote), uri, o.managedOptions, logProgress("pull-first"));
	if (!region)
		return r3d::fail(region.error().code, fmt::format("'{}': {}", uri, region.error().message));
	auto s = (*region)->status();
	r3d::log::get("r3serve")->info("managed export '{}': {} ({} bytes, chunks of {}, cache {}{}, {} pull workers)",
				       name, uri, s.size, r3d::formatSize(s.chunk), s.cache.empty() ? "in memory" : s.cache,
				       s.resumed ? ", resumed" : "", o.managedOptions.pullWorkers);
	return OpenedExport{ name, (*region)->top(), *region };
}

} // namespace

r3d::ResultMsg<std::vector<OpenedExport>> openExports(const ServeOptions &o, const char *kind, r3d::Runtime &runtime)
{
	auto logger = r3d::log::get("r3serve");
	std::vector<OpenedExport> exports;
	for (const auto &[name, uri] : o.exports) {
		if (o.managed) {
			auto m = openManaged(o, name, uri, runtime);
			if (!m)
				return r3d::unexpectedOf(m.error());
			exports.push_back(std::move(*m));
			continue;
		}
		auto pipeline = r3d::stages::openPipeline(uri, {}, &runtime);
		if (!pipeline)
			return r3d::unexpectedOf(pipeline.error());
		logger->info("{} '{}': {} ({} bytes, {}{})", kind, name, uri, pipeline->top->size(), pipeline->description,
			     o.readOnly ? ", read-only" : "");
		exports.push_back({ name, std::move(pipeline->top) });
	}
	return exports;
}

Counters withManagedCounters(Counters counters, const std::vector<OpenedExport> &exports)
{
	for (const auto &exp : exports)
		if (exp.managed) {
			auto m = exp.managed->counters();
			counters.insert(counters.end(), m.begin(), m.end());
		}
	return counters;
}

bool syncExports(const ServeOptions &o, const std::vector<OpenedExport> &exports)
{
	auto logger = [] { return r3d::log::get("r3serve"); };
	if (o.readOnly)
		return true;
	bool ok = true;
	for (const auto &exp : exports) {
		if (exp.managed) {
			auto s = exp.managed->status();
			logger()->info("export '{}': pushing {} of dirty data to the remote", exp.name,
				       r3d::formatSize(s.dirtyBytes));
			auto closed = exp.managed->close(false, logProgress("push"));
			if (!closed) {
				logger()->error("export '{}': {}; the cache keeps the dirty chunks for the next start",
						exp.name, closed.error().message);
				ok = false;
			} else {
				logger()->info("export '{}': everything is on the remote", exp.name);
			}
			continue;
		}
		auto synced = exp.backend->sync();
		if (!synced) {
			r3d::log::get("r3serve")->error("flushing export '{}' failed: {}", exp.name,
							synced.error().message());
			ok = false;
		}
	}
	return ok;
}

} // namespace r3serve
