#pragma once

#include <string>

namespace r3cli {

/// r3serve: parses the command line, serves until SIGTERM/SIGINT, returns the exit code
/// (0 clean stop, 1 runtime failure, 2 bad usage).
int runServe(int argc, char **argv);

/// Writes `text` to a temporary name and renames it, so a reader never sees half a file.
bool writeFileAtomically(const std::string &path, const std::string &text);

} // namespace r3cli
