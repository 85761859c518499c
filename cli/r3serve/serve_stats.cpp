#include "serve_stats.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "serve_options.hpp"

namespace r3serve {

std::string statsJson(const r3d::nbd::Stats &s)
{
	std::string json = "{";
	r3d::nbd::forEachCounter(s, [&](const char *name, uint64_t value) {
		json += fmt::format("{}\"{}\":{}", json.size() > 1 ? "," : "", name, value);
	});
	return json + "}\n";
}

bool writeFileAtomically(const std::string &path, const std::string &text)
{
	std::string tmp = path + ".tmp";
	{
		std::ofstream out(tmp, std::ios::trunc);
		if (!(out << text))
			return false;
	}
	return std::rename(tmp.c_str(), path.c_str()) == 0;
}

void reportExit(const ServeOptions &o, const r3d::nbd::Stats &stats, const std::string &what)
{
	std::string counters;
	r3d::nbd::forEachCounter(stats, [&](const char *name, uint64_t value) {
		std::string words = name;
		std::replace(words.begin(), words.end(), '_', ' ');
		counters += fmt::format("{}{} {}", counters.empty() ? "" : ", ", value, words);
	});
	r3d::log::get("r3serve")->info("{}: {}", what, counters);
	if (!o.statsFile.empty())
		writeFileAtomically(o.statsFile, statsJson(stats));
	if (!o.pidFile.empty())
		::unlink(o.pidFile.c_str());
}

} // namespace r3serve
