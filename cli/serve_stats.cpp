#include "serve_stats.hpp"

#include <cstdio>
#include <fstream>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "serve_options.hpp"

namespace r3cli {

std::string statsJson(const r3d::nbd::Stats &s)
{
	return fmt::format("{{\"connections\":{},\"reads\":{},\"writes\":{},\"flushes\":{},\"trims\":{},"
			   "\"write_zeroes\":{},\"caches\":{},\"block_status\":{},\"bytes_read\":{},"
			   "\"bytes_written\":{},\"errors\":{}}}\n",
			   s.connections, s.reads, s.writes, s.flushes, s.trims, s.writeZeroes, s.caches,
			   s.blockStatus, s.bytesRead, s.bytesWritten, s.errors);
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
	r3d::log::get("r3serve")->info("{}: {} connections, {} reads, {} writes, {} flushes, {} trims, {} errors", what,
				       stats.connections, stats.reads, stats.writes, stats.flushes, stats.trims,
				       stats.errors);
	if (!o.statsFile.empty())
		writeFileAtomically(o.statsFile, statsJson(stats));
	if (!o.pidFile.empty())
		::unlink(o.pidFile.c_str());
}

} // namespace r3cli
