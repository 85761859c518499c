#include "serve_mode.hpp"

#include <r3d/log.hpp>

#include "serve_options.hpp"
#include "stages/pipeline.hpp"

namespace r3serve {

Counters nbdCounters(const r3d::nbd::Stats &stats)
{
	Counters counters;
	// The stats file's keys: the counters without the active_connections gauge.
	r3d::nbd::forEachCounter(stats, [&](const char *name, uint64_t value) { counters.emplace_back(name, value); });
	return counters;
}

r3d::ResultMsg<std::vector<OpenedExport>> openExports(const ServeOptions &o, const char *kind, r3d::Runtime &runtime)
{
	auto logger = r3d::log::get("r3serve");
	std::vector<OpenedExport> exports;
	for (const auto &[name, uri] : o.exports) {
		auto pipeline = r3d::stages::openPipeline(uri, {}, &runtime);
		if (!pipeline)
			return r3d::unexpectedOf(pipeline.error());
		logger->info("{} '{}': {} ({} bytes, {}{})", kind, name, uri, pipeline->top->size(), pipeline->description,
			     o.readOnly ? ", read-only" : "");
		exports.push_back({ name, std::move(pipeline->top) });
	}
	return exports;
}

bool syncExports(const ServeOptions &o, const std::vector<OpenedExport> &exports)
{
	if (o.readOnly)
		return true;
	bool ok = true;
	for (const auto &exp : exports) {
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
