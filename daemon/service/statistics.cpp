#include "service/statistics.hpp"

namespace r3mapd::service {

std::map<std::string, uint64_t> statisticsMap(const r3d::nbd::Stats &s)
{
	return {
		{ "bytes_read", s.bytesRead },
		{ "bytes_written", s.bytesWritten },
		{ "reads", s.reads },
		{ "writes", s.writes },
		{ "flushes", s.flushes },
		{ "trims", s.trims },
		{ "errors", s.errors },
		{ "connections", s.connections },
		{ "active_connections", s.activeConnections },
	};
}

} // namespace r3mapd::service
