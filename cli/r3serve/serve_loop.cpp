#include "serve_loop.hpp"

#include <cstdio>
#include <ctime>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "serve_mode.hpp"
#include "serve_options.hpp"
#include "serve_stats.hpp"

namespace r3serve {

namespace {

// How often a mode is asked whether it still serves while we wait for a signal.
constexpr long kWatchNs = 200 * 1000 * 1000;

} // namespace

int runServeLoop(ServeMode &mode, const ServeOptions &o, const sigset_t &signals)
{
	auto logger = r3d::log::get("r3serve");
	if (auto started = mode.start(); !started) {
		std::fprintf(stderr, "r3serve: %s\n", started.error().message.c_str());
		return 1;
	}
	if (!o.pidFile.empty() && !writeFileAtomically(o.pidFile, fmt::format("{}\n", ::getpid()))) {
		std::fprintf(stderr, "r3serve: cannot write pid file '%s'\n", o.pidFile.c_str());
		(void)mode.stop(true);
		return 1;
	}
	// Where to connect once it accepts connections: the port the kernel chose for port 0,
	// or the device once it is ready.
	std::printf("%s\n", mode.address().c_str());
	std::fflush(stdout);

	int status = 0;
	bool force = false;
	for (;;) {
		timespec watch{ 0, kWatchNs };
		int sig = ::sigtimedwait(&signals, nullptr, &watch);
		if (sig == SIGUSR1) {
			if (!o.statsFile.empty())
				writeFileAtomically(o.statsFile, statsJson(mode.counters()));
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			logger->info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			auto stopped = mode.stop(force);
			if (stopped == ServeMode::Stop::Busy) {
				force = true; // a second signal stops anyway
				continue;
			}
			if (stopped == ServeMode::Stop::Failed)
				status = 1;
			break;
		}
		if (auto why = mode.failure(); !why.empty()) {
			logger->error("{}", why);
			(void)mode.stop(true);
			status = 1;
			break;
		}
	}

	if (!mode.sync())
		status = 1;
	reportExit(o, mode.counters(), mode.what());
	return status;
}

} // namespace r3serve
