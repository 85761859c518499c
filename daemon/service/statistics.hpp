#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/counters.hpp"

namespace r3mapd::service {

/// The Statistics property (a{st}) of Mount1 and Export1: every counter the object has.
std::map<std::string, uint64_t> statisticsMap(const r3d::Counters &counters);

} // namespace r3mapd::service
