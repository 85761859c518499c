#pragma once

#include <string>

#include "nbd/server.hpp"

namespace r3serve {

/// The server's counters as one JSON object (--stats-file).
std::string statsJson(const r3d::nbd::Stats &s);

/// Written to a temporary name and renamed, so a reader never sees half a file.
bool writeFileAtomically(const std::string &path, const std::string &text);

struct ServeOptions;

/// The last words of a serving run: logs the counters under `what`, writes the stats
/// file, removes the pid file.
void reportExit(const ServeOptions &o, const r3d::nbd::Stats &stats, const std::string &what);

} // namespace r3serve
