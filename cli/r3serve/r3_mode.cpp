#include "r3_mode.hpp"

#include <cstdio>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/log.hpp>

#include "serve_stats.hpp"
#include "transport/rpc_server.hpp"

namespace r3serve {

namespace {

std::string r3StatsJson(const r3d::transport::RpcServerStats &s)
{
	return fmt::format("{{\"connections\":{},\"refused\":{},\"requests\":{},\"errors\":{},\"bytes_read\":{},"
			   "\"bytes_written\":{}}}\n",
			   s.connections, s.refused, s.requests, s.errors, s.bytesRead, s.bytesWritten);
}

} // namespace

int serveR3(const ServeOptions &o, const sigset_t &signals)
{
	auto logger = r3d::log::get("r3serve");
	r3d::transport::RpcServerOptions so;
	so.tls = r3d::transport::TlsServerConfig{ o.tlsCert, o.tlsKey, o.tlsCa };
	so.tokenFile = o.tokenFile;
	so.maxPayload = o.maxRequest;
	so.workerThreads = o.workers;
	auto server = r3d::transport::RpcServer::create(so);
	if (!server) {
		std::fprintf(stderr, "r3serve: %s\n", server.error().message.c_str());
		return 1;
	}
	std::vector<std::shared_ptr<r3d::ReadWriterAt>> writable;
	for (const auto &[name, uri] : o.exports) {
		auto backend = r3d::openBackend(uri);
		if (!backend) {
			std::fprintf(stderr, "r3serve: %s\n", backend.error().message.c_str());
			return 1;
		}
		(*server)->addExport({ name, *backend, 0, o.readOnly });
		if (!o.readOnly)
			writable.push_back(*backend);
		logger->info("r3 export '{}': {} ({} bytes{})", name, uri, (*backend)->size(), o.readOnly ? ", read-only" : "");
	}
	auto address = (*server)->listen(o.listenAddress);
	if (!address) {
		std::fprintf(stderr, "r3serve: %s\n", address.error().message.c_str());
		return 1;
	}
	(*server)->start();
	if (!o.pidFile.empty() && !writeFileAtomically(o.pidFile, fmt::format("{}\n", ::getpid()))) {
		std::fprintf(stderr, "r3serve: cannot write pid file '%s'\n", o.pidFile.c_str());
		return 1;
	}
	std::printf("%s\n", address->c_str());
	std::fflush(stdout);

	for (;;) {
		int sig = 0;
		sigwait(&signals, &sig);
		if (sig != SIGUSR1) {
			logger->info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (!o.statsFile.empty())
			writeFileAtomically(o.statsFile, r3StatsJson((*server)->stats()));
	}
	(*server)->stop();

	int status = 0;
	for (const auto &backend : writable) {
		auto synced = backend->sync();
		if (!synced) {
			logger->error("flushing a backend failed: {}", synced.error().message());
			status = 1;
		}
	}
	auto stats = (*server)->stats();
	logger->info("served {} connections ({} refused): {} requests, {} errors", stats.connections, stats.refused,
		     stats.requests, stats.errors);
	if (!o.statsFile.empty())
		writeFileAtomically(o.statsFile, r3StatsJson(stats));
	if (!o.pidFile.empty())
		::unlink(o.pidFile.c_str());
	return status;
}

} // namespace r3serve
