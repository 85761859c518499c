#include "serve_stats.hpp"

#include <cstdio>
#include <fstream>

#include <fmt/format.h>

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

} // namespace r3cli
