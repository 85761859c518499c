#pragma once

#include <string>

#include "serve_mode.hpp"

namespace r3serve {

struct ServeOptions;

/// The counters as one JSON object (--stats-file).
std::string statsJson(const Counters &counters);

/// Written to a temporary name and renamed, so a reader never sees half a file.
bool writeFileAtomically(const std::string &path, const std::string &text);

/// The last words of a serving run: logs the counters under `what`, writes the stats
/// file, removes the pid file.
void reportExit(const ServeOptions &o, const Counters &counters, const std::string &what);

} // namespace r3serve
