#pragma once

#include <csignal>

#include "serve_options.hpp"

namespace r3serve {

/// r3serve --device: attaches the backend to a kernel nbd device, prints its path once
/// it is ready, serves until SIGTERM/SIGINT, then flushes, disconnects and frees it.
/// `signals` are already blocked in every thread. Returns the exit code.
int serveDevice(const ServeOptions &options, const sigset_t &signals);

} // namespace r3serve
