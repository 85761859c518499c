#include "serve_command.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/log.hpp>

#include "nbd/listener.hpp"
#include "nbd/server.hpp"
#include "device_mode.hpp"
#include "serve_options.hpp"
#include "r3_mode.hpp"
#include "serve_stats.hpp"

namespace r3serve {

int runServe(int argc, char **argv)
{
	auto parsed = parseServeOptions(argc, argv);
	if (!parsed) {
		std::fprintf(stderr, "r3serve: %s\n%s", parsed.error().message.c_str(), serveUsage());
		return 2;
	}
	const ServeOptions &o = *parsed;
	if (o.help) {
		std::fputs(serveUsage(), stdout);
		return 0;
	}
	r3d::log::setup();
	if (!r3d::log::setLevel(o.logLevel)) {
		std::fprintf(stderr, "r3serve: unknown log level '%s' (trace, debug, info, warn, error, off)\n",
			     o.logLevel.c_str());
		return 2;
	}
	auto logger = r3d::log::get("r3serve");

	// Signals are taken by one thread with sigwait; block them before any thread starts.
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &signals, nullptr);
	std::signal(SIGPIPE, SIG_IGN);
	if (o.r3)
		return serveR3(o, signals);
	if (!o.device.empty())
		return serveDevice(o, signals);

	r3d::nbd::ServerOptions serverOptions;
	serverOptions.maxPayload = o.maxRequest;
	serverOptions.workerThreads = o.workers;
	r3d::nbd::Server server(serverOptions);
	for (const auto &[name, uri] : o.exports) {
		auto backend = r3d::openBackend(uri);
		if (!backend) {
			std::fprintf(stderr, "r3serve: %s\n", backend.error().message.c_str());
			return 1;
		}
		server.addExport({ name, o.description, *backend, o.readOnly });
		logger->info("export '{}': {} ({} bytes{})", name, uri, (*backend)->size(), o.readOnly ? ", read-only" : "");
	}

	auto listener = o.socketPath.empty() ? r3d::nbd::Listener::listenTcp(server, o.listenAddress)
					     : r3d::nbd::Listener::listenUnix(server, o.socketPath);
	if (!listener) {
		std::fprintf(stderr, "r3serve: %s\n", listener.error().message.c_str());
		return 1;
	}
	logger->info("listening on {}", (*listener)->address());
	if (!o.pidFile.empty() && !writeFileAtomically(o.pidFile, fmt::format("{}\n", ::getpid()))) {
		std::fprintf(stderr, "r3serve: cannot write pid file '%s'\n", o.pidFile.c_str());
		return 1;
	}

	// Where to connect, once it accepts connections: the port the kernel chose for port 0.
	std::printf("%s\n", (*listener)->address().c_str());
	std::fflush(stdout);

	std::atomic<bool> stopping{ false };
	std::thread signalThread([&] {
		for (;;) {
			int sig = 0;
			sigwait(&signals, &sig);
			if (sig == SIGUSR1) {
				if (!o.statsFile.empty())
					writeFileAtomically(o.statsFile, statsJson(server.stats()));
				continue;
			}
			if (!stopping)
				logger->info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		stopping = true;
		// Refuse new connections and wind down live ones (in-flight requests finish and
		// backends are flushed); stop() then joins the connection threads.
		server.shutdown();
		(*listener)->stop();
	});
	(*listener)->run();
	if (!stopping.exchange(true))
		::kill(::getpid(), SIGTERM); // the accept loop failed on its own: wake the signal thread
	signalThread.join();
	(*listener)->stop();

	int status = 0;
	for (const auto &exp : server.exports()) {
		if (exp.readOnly)
			continue;
		auto synced = exp.backend->sync();
		if (!synced) {
			logger->error("flushing export '{}' failed: {}", exp.name, synced.error().message());
			status = 1;
		}
	}
	reportExit(o, server.stats(), "served");
	return status;
}

} // namespace r3serve
