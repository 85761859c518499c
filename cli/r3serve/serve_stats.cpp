#include "serve_stats.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "serve_options.hpp"

namespace r3serve {

std::string statsJson(const Counters &counters)
{
	std::string json = "{";
	for (const auto &[name, value] : counters)
		json += fmt::format("{}\"{}\":{}", json.size() > 1 ? "," : "", name, value);
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

void reportExit(const ServeOptions &o, const Counters &counters, const std::string &what)
{
	// "12 reads, 4096 bytes read, ...": the stats file's names as words.
	std::string text;
	for (const auto &[name, value] : counters) {
		std::string words = name;
		std::replace(words.begin(), words.end(), '_', ' ');
		text += fmt::format("{}{} {}", text.empty() ? "" : ", ", value, words);
	}
	r3d::log::get("r3serve")->info("{}: {}", what, text);
	if (!o.statsFile.empty())
		writeFileAtomically(o.statsFile, statsJson(counters));
	if (!o.pidFile.empty())
		::unlink(o.pidFile.c_str());
}

} // namespace r3serve
