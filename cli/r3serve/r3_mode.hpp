#pragma once

#include <csignal>

#include "serve_options.hpp"

namespace r3serve {

/// r3serve --r3: exports the backends over r3map's transport (r3:// clients) until one of
/// the blocked `signals` arrives. Same exit codes as runServe().
int serveR3(const ServeOptions &o, const sigset_t &signals);

} // namespace r3serve
