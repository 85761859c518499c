#include "service/statistics.hpp"

namespace r3mapd::service {

std::map<std::string, uint64_t> statisticsMap(const r3d::Counters &counters)
{
	return { counters.begin(), counters.end() };
}

} // namespace r3mapd::service
