#pragma once

#include <csignal>

namespace r3serve {

class ServeMode;
struct ServeOptions;

/// The one run of every mode: start → pid file → print the address → serve until
/// SIGTERM/SIGINT (SIGUSR1 writes the stats file) → stop → sync → report. `signals` are
/// blocked in every thread already. Returns the exit code (0 clean stop, 1 failure).
int runServeLoop(ServeMode &mode, const ServeOptions &o, const sigset_t &signals);

} // namespace r3serve
