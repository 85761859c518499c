// r3migrate: live migration without the daemon, for tests and benchmarks. The logic is
// libr3d's (migration/seeder.hpp, migration/leecher.hpp); this is flags and an NBD export.
//
//   r3migrate seed URI --listen ADDR [--export ADDR|unix:PATH] [--id ID] [--chunk-size SIZE]
//        [--tls-cert F --tls-key F [--tls-ca F]] [--token-file F] [--on-finalize CMD]
//        [--commit-timeout DUR] [--exit-on-complete]
//   r3migrate pull r3://HOST:PORT/ID[?tls-ca=F&tls-cert=F&tls-key=F&tls-name=N&token-file=F]
//        --export ADDR|unix:PATH [--downtime DUR] [--max-rounds N] [--rate SIZE]
//        [--finalize auto|manual] [--id LEECHER] [--post-copy-timeout DUR] [--json]
//
// seed prints "r3://ADDR/ID" on stdout once it listens; pull prints "export ADDR" once its
// export listens and, with --json, one JSON line of its progress at the end. SIGUSR1 asks
// a puller to finalize; SIGINT/SIGTERM stop either.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/backend_uri.hpp>
#include <r3d/duration.hpp>
#include <r3d/log.hpp>
#include <r3d/size.hpp>

#include "base/host_port.hpp"
#include "base/runtime.hpp"
#include "migration/leecher.hpp"
#include "migration/seeder.hpp"
#include "nbd/endpoint.hpp"
#include "transport/client_security.hpp"

namespace {

using namespace r3d;

int usage(const std::string &why)
{
	std::fprintf(stderr,
		     "r3migrate: %s\n"
		     "usage: r3migrate seed URI --listen ADDR [--export ADDR|unix:PATH] [--id ID] [--chunk-size SIZE]\n"
		     "         [--tls-cert F --tls-key F [--tls-ca F]] [--token-file F] [--on-finalize CMD]\n"
		     "         [--commit-timeout DUR] [--exit-on-complete]\n"
		     "       r3migrate pull r3://HOST:PORT/ID[?tls-ca=F&token-file=F] --export ADDR|unix:PATH\n"
		     "         [--downtime DUR] [--max-rounds N] [--rate SIZE] [--finalize auto|manual] [--id ID]\n"
		     "         [--post-copy-timeout DUR] [--json]\n",
		     why.c_str());
	return 2;
}

/// --key VALUE and bare --flags after the command's one positional argument.
struct Args {
	std::string positional;
	std::map<std::string, std::string> values;

	bool has(const std::string &k) const { return values.count(k) != 0; }
	std::string get(const std::string &k, const std::string &fallback = "") const
	{
		auto it = values.find(k);
		return it == values.end() ? fallback : it->second;
	}
};

ResultMsg<Args> parseArgs(int argc, char **argv, const std::vector<std::string> &flags)
{
	Args a;
	for (int i = 2; i < argc; ++i) {
		std::string s = argv[i];
		if (!s.starts_with("--")) {
			if (!a.positional.empty())
				return fail(EINVAL, "unexpected argument " + s);
			a.positional = s;
			continue;
		}
		std::string key = s.substr(2);
		if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
			a.values[key] = "1";
			continue;
		}
		if (i + 1 >= argc)
			return fail(EINVAL, s + " needs a value");
		a.values[key] = argv[++i];
	}
	if (a.positional.empty())
		return fail(EINVAL, "missing the URI");
	return a;
}

/// Blocks SIGINT, SIGTERM, SIGUSR1 so sigtimedwait() takes them.
sigset_t blockSignals()
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	return set;
}

/// The signal that arrived within `ms`, 0 if none.
int waitSignal(const sigset_t &set, long ms)
{
	timespec ts{ ms / 1000, (ms % 1000) * 1000000 };
	int sig = sigtimedwait(&set, nullptr, &ts);
	return sig > 0 ? sig : 0;
}

/// An NBD export of `backend` on "HOST:PORT" or "unix:PATH".
ResultMsg<std::unique_ptr<nbd::Endpoint>> exportNbd(Runtime &rt, std::shared_ptr<ReadWriterAt> backend,
						   const std::string &where)
{
	nbd::ServerOptions so;
	so.runtime = &rt;
	auto server = std::make_unique<nbd::Server>(so);
	server->addExport({ "", "r3migrate", std::move(backend), false, nullptr });
	return nbd::Endpoint::listen(std::move(server), where);
}

std::string progressJson(const migration::MigrationProgress &p)
{
	auto ns = [](std::chrono::nanoseconds d) { return d == std::chrono::nanoseconds::max() ? -1 : d.count(); };
	return fmt::format("{{\"role\":\"{}\",\"phase\":\"{}\",\"id\":\"{}\",\"round\":{},\"region_bytes\":{},"
			   "\"transferred_bytes\":{},\"remote_bytes\":{},\"dirty_bytes\":{},\"bandwidth\":{:.0f},"
			   "\"dirty_rate\":{:.0f},\"predicted_downtime_ns\":{},\"downtime_ns\":{},\"owner\":{},"
			   "\"failure\":\"{}\"}}",
			   migration::roleName(p.role), migration::phaseName(p.phase), p.migrationId, p.round,
			   p.regionBytes, p.transferredBytes, p.remoteBytes, p.dirtyBytes, p.bandwidth, p.dirtyRate,
			   ns(p.predictedDowntime), p.downtime.count(), p.owner ? "true" : "false", p.failure);
}

int seed(int argc, char **argv)
{
	auto a = parseArgs(argc, argv, { "exit-on-complete" });
	if (!a)
		return usage(a.error().message);
	if (!a->has("listen"))
		return usage("seed needs --listen ADDR");
	sigset_t signals = blockSignals();
	Runtime rt;
	auto source = openBackend(a->positional, &rt);
	if (!source)
		return usage(source.error().message);
	migration::SeederOptions o;
	o.migrationId = a->get("id");
	if (a->has("chunk-size")) {
		auto c = parseSize(a->get("chunk-size"));
		if (!c)
			return usage(c.error().message);
		o.chunkSize = *c;
	}
	o.server.tls.certFile = a->get("tls-cert");
	o.server.tls.keyFile = a->get("tls-key");
	o.server.tls.caFile = a->get("tls-ca");
	o.server.tokenFile = a->get("token-file");
	if (a->has("commit-timeout")) {
		auto d = parseDuration(a->get("commit-timeout"));
		if (!d)
			return usage(d.error().message);
		o.handover.commitTimeout = *d;
	}
	if (std::string cmd = a->get("on-finalize"); !cmd.empty())
		o.onSuspend = [cmd]() -> ResultMsg<void> {
			int rc = std::system(cmd.c_str());
			if (rc != 0)
				return fail(ECANCELED, fmt::format("'{}' exited with {}", cmd, rc));
			return {};
		};
	auto seeder = migration::Seeder::create(rt, *source, o);
	if (!seeder)
		return usage(seeder.error().message);
	std::unique_ptr<nbd::Endpoint> nbdExport;
	if (a->has("export")) {
		auto e = exportNbd(rt, (*seeder)->front(), a->get("export"));
		if (!e)
			return usage(e.error().message);
		nbdExport = std::move(*e);
	}
	auto address = (*seeder)->listen(a->get("listen"));
	if (!address)
		return usage(address.error().message);
	if (nbdExport)
		std::printf("export %s\n", nbdExport->address().c_str());
	std::printf("r3://%s/%s\n", address->c_str(), (*seeder)->migrationId().c_str());
	std::fflush(stdout);
	bool exitOnComplete = a->has("exit-on-complete");
	for (;;) {
		int sig = waitSignal(signals, 100);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (exitOnComplete && (*seeder)->progress().phase == migration::Phase::Complete)
			break;
	}
	std::printf("%s\n", progressJson((*seeder)->progress()).c_str());
	nbdExport.reset();
	(*seeder)->stop();
	return 0;
}

int pull(int argc, char **argv)
{
	auto a = parseArgs(argc, argv, { "json" });
	if (!a)
		return usage(a.error().message);
	if (!a->has("export"))
		return usage("pull needs --export ADDR|unix:PATH");
	auto uri = BackendUri::parse(a->positional);
	if (!uri || uri->scheme != "r3")
		return usage("expected r3://HOST:PORT/ID");
	if (auto ok = uri->onlyParams(transport::ClientSecurity::params()); !ok)
		return usage(ok.error().message);
	auto hp = parseHostPort(uri->authority, "7700");
	if (!hp)
		return usage(hp.error().message);
	migration::LeecherOptions o;
	o.host = hp->host;
	o.port = hp->port;
	o.migrationId = uri->path.starts_with("/") ? uri->path.substr(1) : uri->path;
	o.leecherId = a->get("id");
	auto security = transport::ClientSecurity::of(*uri);
	if (!security)
		return usage(security.error().message);
	o.tls = std::move(security->tls);
	o.token = std::move(security->token);
	for (auto [key, field] : { std::pair{ "downtime", &o.convergence.downtimeBudget } }) {
		if (!a->has(key))
			continue;
		auto d = parseDuration(a->get(key));
		if (!d)
			return usage(d.error().message);
		*field = *d;
	}
	if (a->has("post-copy-timeout")) {
		auto d = parseDuration(a->get("post-copy-timeout"));
		if (!d)
			return usage(d.error().message);
		o.postCopyTimeout = *d;
	}
	if (a->has("max-rounds"))
		o.convergence.maxRounds = static_cast<unsigned>(std::stoul(a->get("max-rounds")));
	if (a->has("rate")) {
		auto r = parseSize(a->get("rate"));
		if (!r)
			return usage(r.error().message);
		o.pullRate = *r;
	}
	std::string mode = a->get("finalize", "auto");
	if (mode != "auto" && mode != "manual")
		return usage("--finalize takes auto or manual");
	o.autoFinalize = mode == "auto";
	migration::Phase shown = migration::Phase::Failed;
	o.onProgress = [&shown](const migration::MigrationProgress &p) {
		if (p.phase == shown)
			return;
		shown = p.phase;
		std::fprintf(stderr, "r3migrate: %s round %lu, %lu bytes pulled, %lu to go\n",
			     migration::phaseName(p.phase), static_cast<unsigned long>(p.round),
			     static_cast<unsigned long>(p.transferredBytes), static_cast<unsigned long>(p.remoteBytes));
	};
	sigset_t signals = blockSignals();
	Runtime rt;
	auto leecher = migration::Leecher::connect(rt, o);
	if (!leecher) {
		std::fprintf(stderr, "r3migrate: %s\n", leecher.error().message.c_str());
		return 1;
	}
	auto e = exportNbd(rt, (*leecher)->region(), a->get("export"));
	if (!e) {
		std::fprintf(stderr, "r3migrate: %s\n", e.error().message.c_str());
		return 1;
	}
	std::printf("export %s\n", (*e)->address().c_str());
	std::fflush(stdout);
	bool printed = false;
	int rc = 0;
	// A short poll: the end of the migration is reported within 10 ms (the app-state example
	// times the downtime up to this line).
	for (;;) {
		int sig = waitSignal(signals, 10);
		if (sig == SIGUSR1)
			(*leecher)->finalize();
		if (sig == SIGINT || sig == SIGTERM)
			break;
		auto phase = (*leecher)->phase();
		if (!printed && (phase == migration::Phase::Complete || phase == migration::Phase::Failed)) {
			printed = true;
			rc = phase == migration::Phase::Failed ? 1 : 0;
			if (a->has("json"))
				std::printf("%s\n", progressJson((*leecher)->progress()).c_str());
			std::fflush(stdout);
		}
	}
	e->reset();
	(*leecher)->stop();
	return rc;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage("missing the command (seed or pull)");
	std::string cmd = argv[1];
	if (const char *level = std::getenv("R3MIGRATE_LOG"))
		r3d::log::setLevel(level);
	if (cmd == "seed")
		return seed(argc, argv);
	if (cmd == "pull")
		return pull(argc, argv);
	return usage("unknown command " + cmd);
}
