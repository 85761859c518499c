#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace r3d {

/// Named counters in a fixed order: what D-Bus Statistics, --json output and logs show, for
/// any component (an NBD server, a mount, later a puller or a migration).
using Counters = std::vector<std::pair<std::string, uint64_t>>;

} // namespace r3d
