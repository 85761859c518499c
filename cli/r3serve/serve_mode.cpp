#include "serve_mode.hpp"

#include <r3d/backend_factory.hpp>
#include <r3d/log.hpp>

#include "serve_options.hpp"

namespace r3serve {

Counters nbdCounters(const r3d::nbd::Stats &stats)
{
	Counters counters;
	r3d::nbd::forEachCounter(stats, [&](const char *name, uint64_t value) { counters.emplace_back(name, value); });
	return counters;
}

r3d::ResultMsg<std::vector<OpenedExport>> openExports(const ServeOptions &o, const char *kind)
{
	auto logger = r3d::log::get("r3serve");
	std::vector<OpenedExport> exports;
	for (const auto &[name, uri] : o.exports) {
		auto backend = r3d::openBackend(uri);
		if (!backend)
			return r3d::unexpectedOf(backend.error());
		logger->info("{} '{}': {} ({} bytes{})", kind, name, uri, (*backend)->size(),
			     o.readOnly ? ", read-only" : "");
		exports.push_back({ name, std::move(*backend) });
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
