#pragma once

namespace r3serve {

/// r3serve: parses the command line, serves until SIGTERM/SIGINT, returns the exit code
/// (0 clean stop, 1 runtime failure, 2 bad usage).
int runServe(int argc, char **argv);

} // namespace r3serve
