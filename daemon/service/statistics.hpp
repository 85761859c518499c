#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "nbd/server.hpp"

namespace r3mapd::service {

/// The Statistics property (a{st}) of Mount1 and Export1.
std::map<std::string, uint64_t> statisticsMap(const r3d::nbd::Stats &stats);

} // namespace r3mapd::service
