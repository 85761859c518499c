#include "device_mode.hpp"

#include <cstdio>
#include <ctime>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "mount/direct_mount.hpp"
#include "serve_stats.hpp"

namespace r3serve {

namespace {

// How often we check that the kernel still talks to us while waiting for a signal.
constexpr long kWatchNs = 200 * 1000 * 1000;

} // namespace

int serveDevice(const ServeOptions &o, const sigset_t &signals)
{
	auto logger = r3d::log::get("r3serve");
	r3d::mount::DirectMountOptions options;
	options.device = o.device;
	options.connections = o.connections;
	if (!o.attachMethod.empty())
		options.method = *r3d::nbd::kernel::parseAttachMethod(o.attachMethod);
	if (!o.ready.empty())
		options.ready = *r3d::nbd::kernel::parseReadyMethod(o.ready);
	options.readOnly = o.readOnly;
	options.blockSize = o.blockSize;
	if (o.timeout)
		options.timeout = std::chrono::seconds(*o.timeout);
	if (o.deadConnTimeout)
		options.deadConnTimeout = std::chrono::seconds(*o.deadConnTimeout);
	options.workerThreads = o.workers;
	const auto &[name, uri] = o.exports.front();
	options.name = name.empty() ? uri : name;

	auto mount = r3d::mount::DirectMount::open(uri, options);
	if (!mount) {
		std::fprintf(stderr, "r3serve: %s\n", mount.error().message.c_str());
		return 1;
	}
	auto &m = **mount;
	if (!o.pidFile.empty() && !writeFileAtomically(o.pidFile, fmt::format("{}\n", ::getpid()))) {
		std::fprintf(stderr, "r3serve: cannot write pid file '%s'\n", o.pidFile.c_str());
		return 1;
	}
	std::printf("%s\n", m.devicePath().c_str());
	std::fflush(stdout);

	int status = 0;
	bool force = false;
	for (;;) {
		timespec watch{ 0, kWatchNs };
		int sig = ::sigtimedwait(&signals, nullptr, &watch);
		if (sig == SIGUSR1) {
			if (!o.statsFile.empty())
				writeFileAtomically(o.statsFile, statsJson(m.stats()));
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			logger->info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			auto closed = m.close(std::chrono::seconds(10), force);
			if (!closed && closed.error().code.value() == EBUSY && !force) {
				// Disconnecting now would lose what the filesystem has not written yet.
				logger->warn("{}; still serving — signal again to disconnect anyway",
					     closed.error().message);
				force = true;
				continue;
			}
			if (!closed) {
				logger->error("{}", closed.error().message);
				status = 1;
			}
			break;
		}
		if (!m.serving()) {
			logger->error("{}: the kernel dropped the connection", m.devicePath());
			status = 1;
			(void)m.close(std::chrono::seconds(10), true);
			break;
		}
	}

	reportExit(o, m.stats(), m.devicePath());
	return status;
}

} // namespace r3serve
