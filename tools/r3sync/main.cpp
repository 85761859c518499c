// r3sync: push-based delta sync of files, without the daemon. The logic is libr3d's
// (sync/sync_push.hpp, sync/sync_service.hpp, sync/sync_hub.hpp); this is flags.
//
//   r3sync serve --listen HOST:PORT (--dir DIR [--apply journal|rename] | --dest URI) [--verify]
//        [--token-file F] [--tls-cert F --tls-key F [--tls-ca F]] [--json]
//   r3sync push SRC --to r3://HOST:PORT[/NAME] [--to ...] [--chunk-size SIZE] [--once | --interval DUR
//        [--rounds N]] [--threads N] [--compress] [--token-file F] [--tls-ca F] [--json]
//   r3sync hub --listen HOST:PORT --dir CACHE_DIR --to r3://HOST:PORT [--to ...] [--compress] [--token-file F]
//        [--json]
//
// serve and hub print "listening HOST:PORT" on stdout once they accept. push exits 0 when
// every destination acknowledged the last round, 1 otherwise; SIGINT/SIGTERM end an
// --interval push after the current round, and serve or hub at once. A destination that
// refuses (sync::SyncErrorKind: not retried) makes push, and hub at its start, exit at
// once: 3 for the token or TLS, 4 for the protocol version or another refusal.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <r3d/backend_factory.hpp>
#include <r3d/duration.hpp>
#include <r3d/log.hpp>
#include <r3d/size.hpp>

#include "base/runtime.hpp"
#include "base/thread_pool.hpp"
#include "sync/sync_hub.hpp"
#include "sync/sync_link.hpp"
#include "sync/sync_push.hpp"
#include "sync/sync_service.hpp"
#include "transport/block/rpc_server.hpp"
#include "transport/token.hpp"

namespace {

using namespace r3d;

int usage(const std::string &why)
{
	std::fprintf(stderr,
		     "r3sync: %s\n"
		     "usage: r3sync serve --listen HOST:PORT (--dir DIR [--apply journal|rename] | --dest URI) [--verify]\n"
		     "         [--token-file F] [--tls-cert F --tls-key F [--tls-ca F]] [--json]\n"
		     "       r3sync push SRC --to r3://HOST:PORT[/NAME] [--to ...] [--chunk-size SIZE] [--once |\n"
		     "         --interval DUR [--rounds N]] [--threads N] [--compress] [--token-file F] [--tls-ca F]\n"
		     "         [--json]\n"
		     "       r3sync hub --listen HOST:PORT --dir CACHE_DIR --to r3://HOST:PORT [--to ...]\n"
		     "         [--compress] [--token-file F] [--json]\n"
		     "exit status (push, hub): 1 a destination did not acknowledge, 2 bad usage,\n"
		     "  3 the token or TLS refused, 4 the protocol version (or the copy) refused\n",
		     why.c_str());
	return 2;
}

/// The exit status for a destination's refusal.
int refusalStatus(sync::SyncErrorKind kind)
{
	return kind == sync::SyncErrorKind::Auth || kind == sync::SyncErrorKind::Tls ? 3 : 4;
}

const char *refusalWhat(sync::SyncErrorKind kind)
{
	switch (kind) {
	case sync::SyncErrorKind::Auth:
		return "authentication refused";
	case sync::SyncErrorKind::Tls:
		return "TLS failed";
	case sync::SyncErrorKind::Version:
		return "protocol version mismatch";
	default:
		return "refused";
	}
}

/// --key VALUE (repeatable), bare --flags, and at most one positional argument.
struct Args {
	std::string positional;
	std::map<std::string, std::vector<std::string>> values;

	bool has(const std::string &k) const { return values.count(k) != 0; }
	std::string get(const std::string &k, const std::string &fallback = "") const
	{
		auto it = values.find(k);
		return it == values.end() ? fallback : it->second.back();
	}
	std::vector<std::string> all(const std::string &k) const
	{
		auto it = values.find(k);
		return it == values.end() ? std::vector<std::string>{} : it->second;
	}
};

ResultMsg<Args> parseArgs(int argc, char **argv, const std::vector<std::string> &flags,
			  const std::vector<std::string> &options)
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
			a.values[key].push_back("1");
			continue;
		}
		if (std::find(options.begin(), options.end(), key) == options.end())
			return fail(EINVAL, "unknown option " + s);
		if (i + 1 >= argc)
			return fail(EINVAL, s + " needs a value");
		a.values[key].push_back(argv[++i]);
	}
	return a;
}

sigset_t blockSignals()
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, nullptr);
	return set;
}

int waitSignal(const sigset_t &set, long ms)
{
	timespec ts{ ms / 1000, (ms % 1000) * 1000000 };
	int sig = sigtimedwait(&set, nullptr, &ts);
	return sig > 0 ? sig : 0;
}

std::string appliedJson(const sync::AppliedGeneration &g)
{
	std::string out = fmt::format("{{\"event\":\"applied\",\"name\":\"{}\",\"generation\":{},\"size\":{},\"chunks\":{},"
				      "\"bytes\":{},\"seconds\":{:.6f}",
				      g.name, g.generation, g.size, g.chunks, g.bytes, g.seconds);
	if (g.error)
		out += fmt::format(",\"error\":\"{}\"", g.message);
	return out + "}";
}

void printApplied(const sync::AppliedGeneration &g, bool json)
{
	if (json)
		std::printf("%s\n", appliedJson(g).c_str());
	else if (g.error)
		std::printf("%s: generation %llu failed: %s\n", g.name.c_str(), (unsigned long long)g.generation,
			    g.message.c_str());
	else
		std::printf("%s: generation %llu applied: %llu chunks, %s, size %s, %.3f s\n", g.name.c_str(),
			    (unsigned long long)g.generation, (unsigned long long)g.chunks, formatSize(g.bytes).c_str(),
			    formatSize(g.size).c_str(), g.seconds);
	std::fflush(stdout);
}

/// The receiving server of serve and hub; prints "listening ADDR".
struct Server {
	std::unique_ptr<transport::RpcServer> rpc;
	std::shared_ptr<sync::SyncService> service;
};

ResultMsg<Server> startServer(Runtime &rt, const Args &a, sync::SyncServiceOptions so)
{
	transport::RpcServerOptions ro;
	ro.tls.certFile = a.get("tls-cert");
	ro.tls.keyFile = a.get("tls-key");
	ro.tls.caFile = a.get("tls-ca");
	ro.tokenFile = a.get("token-file");
	ro.maxPayload = static_cast<uint32_t>(sync::kMaxSyncChunk);
	auto rpc = transport::RpcServer::create(rt, ro);
	if (!rpc)
		return unexpectedOf(rpc.error());
	Server s;
	s.rpc = std::move(*rpc);
	s.service = std::make_shared<sync::SyncService>(std::move(so), &rt.blocking());
	s.service->addTo(*s.rpc);
	auto address = s.rpc->listen(a.get("listen"));
	if (!address)
		return unexpectedOf(address.error());
	s.rpc->start();
	std::printf("listening %s\n", address->c_str());
	std::fflush(stdout);
	return s;
}

ResultMsg<sync::ReceiverOptions> receiverOptions(const Args &a)
{
	sync::ReceiverOptions ro;
	std::string apply = a.get("apply", "journal");
	if (apply == "rename")
		ro.mode = sync::ApplyMode::Rename;
	else if (apply != "journal")
		return fail(EINVAL, "--apply takes journal or rename");
	ro.verify = a.has("verify");
	return ro;
}

int serve(int argc, char **argv)
{
	auto a = parseArgs(argc, argv, { "verify", "json" },
			   { "listen", "dir", "dest", "apply", "token-file", "tls-cert", "tls-key", "tls-ca" });
	if (!a)
		return usage(a.error().message);
	if (!a->positional.empty())
		return usage("serve takes no positional argument");
	if (!a->has("listen"))
		return usage("serve needs --listen HOST:PORT");
	if (a->has("dest") == a->has("dir"))
		return usage("serve needs --dir DIR or --dest URI");
	if (a->has("dest") && a->has("apply"))
		return usage("--apply is for --dir: a --dest backend is written in place");
	auto ro = receiverOptions(*a);
	if (!ro)
		return usage(ro.error().message);
	if (a->has("dir")) {
		std::error_code ec;
		std::filesystem::create_directories(a->get("dir"), ec);
	}
	sigset_t signals = blockSignals();
	RuntimeOptions rto;
	rto.ioThreads = 2; // file I/O of a session runs on its strand
	Runtime rt(rto);
	sync::SyncServiceOptions so;
	so.dir = a->get("dir");
	if (a->has("dest")) {
		auto target = openBackend(a->get("dest"), &rt);
		if (!target) {
			std::fprintf(stderr, "r3sync: %s\n", target.error().message.c_str());
			return 2;
		}
		so.target = std::move(*target);
	}
	so.receiver = *ro;
	bool json = a->has("json");
	so.onApplied = [json](const sync::AppliedGeneration &g, const sync::SyncReceiver &) { printApplied(g, json); };
	auto server = startServer(rt, *a, std::move(so));
	if (!server) {
		std::fprintf(stderr, "r3sync: %s\n", server.error().message.c_str());
		return 1;
	}
	for (;;) {
		int sig = waitSignal(signals, 200);
		if (sig == SIGINT || sig == SIGTERM)
			break;
	}
	server->rpc->stop();
	return 0;
}

ResultMsg<std::string> readToken(const Args &a)
{
	if (!a.has("token-file"))
		return std::string();
	return transport::readTokenFile(a.get("token-file"));
}

ResultMsg<std::vector<sync::SyncLinkOptions>> targetLinks(const Args &a, const std::string &defaultName)
{
	auto token = readToken(a);
	if (!token)
		return unexpectedOf(token.error());
	std::vector<sync::SyncLinkOptions> links;
	for (const auto &to : a.all("to")) {
		auto link = sync::parseSyncTarget(to, defaultName);
		if (!link)
			return unexpectedOf(link.error());
		link->token = *token;
		link->tls.caFile = a.get("tls-ca");
		link->compress = a.has("compress");
		links.push_back(std::move(*link));
	}
	if (links.empty())
		return fail(EINVAL, "needs at least one --to r3://HOST:PORT[/NAME]");
	return links;
}

void printRound(const sync::RoundReport &r, bool json)
{
	if (json) {
		std::printf("%s\n", r.json().c_str());
	} else {
		std::printf("round %llu: %llu of %llu chunks changed, %s sent (%s on the wire), hash %.3f s, total %.3f s\n",
			    (unsigned long long)r.round, (unsigned long long)r.chunksChanged, (unsigned long long)r.chunks,
			    formatSize(r.bytesSent).c_str(), formatSize(r.wireBytes).c_str(), r.hashSeconds, r.seconds);
		for (const auto &d : r.destinations) {
			if (d.error)
				std::printf("  %s: FAILED: %s (acked generation %llu)\n", d.to.c_str(), d.message.c_str(),
					    (unsigned long long)d.ackedGeneration);
			else
				std::printf("  %s: generation %llu\n", d.to.c_str(), (unsigned long long)d.ackedGeneration);
		}
	}
	std::fflush(stdout);
}

int push(int argc, char **argv)
{
	auto a = parseArgs(argc, argv, { "once", "json", "compress" },
			   { "to", "chunk-size", "interval", "rounds", "threads", "token-file", "tls-ca" });
	if (!a)
		return usage(a.error().message);
	if (a->positional.empty())
		return usage("push needs SRC");
	if (a->has("once") && (a->has("interval") || a->has("rounds")))
		return usage("--once excludes --interval and --rounds");
	if (a->has("rounds") && !a->has("interval"))
		return usage("--rounds needs --interval");
	sync::SyncPushOptions o;
	o.source = a->positional;
	auto chunk = parseSize(a->get("chunk-size", "1M"));
	if (!chunk)
		return usage(chunk.error().message);
	o.chunk = *chunk;
	auto links = targetLinks(*a, std::filesystem::path(o.source).filename().string());
	if (!links)
		return usage(links.error().message);
	o.links = std::move(*links);
	o.targets = a->all("to");
	std::chrono::milliseconds interval{ 0 };
	if (a->has("interval")) {
		auto d = parseDuration(a->get("interval"));
		if (!d)
			return usage(d.error().message);
		interval = *d;
	}
	uint64_t rounds = a->has("interval") ? 0 : 1;
	if (a->has("rounds")) {
		auto n = parseSize(a->get("rounds"));
		if (!n || *n == 0)
			return usage("--rounds takes a count > 0");
		rounds = *n;
	}
	unsigned threads = std::max(1u, std::thread::hardware_concurrency());
	if (a->has("threads")) {
		auto n = parseSize(a->get("threads"));
		if (!n || *n == 0 || *n > 256)
			return usage("--threads takes 1..256");
		threads = static_cast<unsigned>(*n);
	}
	// One round waits for every destination; repeated rounds go on without a lagging one.
	if (rounds == 1)
		o.lagWait = std::chrono::milliseconds{ 0 };
	bool json = a->has("json");
	sigset_t signals = blockSignals();
	RuntimeOptions rto;
	rto.blockingThreads = 1;
	Runtime rt(rto);
	ThreadPool pool(threads);
	auto p = sync::SyncPush::create(rt, pool, o);
	if (!p) {
		std::fprintf(stderr, "r3sync: %s\n", p.error().message.c_str());
		return 2;
	}
	bool ok = true;
	for (uint64_t n = 0; rounds == 0 || n < rounds; ++n) {
		auto start = std::chrono::steady_clock::now();
		auto r = (*p)->round();
		if (!r) {
			std::fprintf(stderr, "r3sync: %s\n", r.error().message.c_str());
			ok = false;
		} else {
			printRound(*r, json);
			ok = r->allAcked();
			if (!ok && !json)
				for (const auto &d : r->destinations)
					if (d.error && !d.refused())
						std::fprintf(stderr, "r3sync: %s: %s\n", d.to.c_str(), d.message.c_str());
			// A refusal is a setup error a retry only repeats: say so and stop.
			if (const auto *d = r->refusal()) {
				for (const auto &x : r->destinations)
					if (x.refused())
						std::fprintf(stderr, "r3sync: %s: %s (not retried): %s\n", x.to.c_str(),
							     refusalWhat(x.kind), x.message.c_str());
				return refusalStatus(d->kind);
			}
		}
		if (rounds != 0 && n + 1 >= rounds)
			break;
		// Sleep out the interval; a signal ends the push after the round just done.
		auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
		auto left = interval > elapsed ? interval - elapsed : std::chrono::milliseconds{ 0 };
		int sig = waitSignal(signals, static_cast<long>(std::max<int64_t>(left.count(), 1)));
		if (sig == SIGINT || sig == SIGTERM)
			break;
	}
	return ok ? 0 : 1;
}

int hub(int argc, char **argv)
{
	auto a = parseArgs(argc, argv, { "json", "compress" },
			   { "listen", "dir", "to", "token-file", "tls-cert", "tls-key", "tls-ca" });
	if (!a)
		return usage(a.error().message);
	if (!a->has("listen") || !a->has("dir"))
		return usage("hub needs --listen HOST:PORT and --dir CACHE_DIR");
	auto links = targetLinks(*a, "unused");
	if (!links)
		return usage(links.error().message);
	std::error_code ec;
	std::filesystem::create_directories(a->get("dir"), ec);
	bool json = a->has("json");
	sigset_t signals = blockSignals();
	RuntimeOptions rto;
	rto.ioThreads = 2;
	Runtime rt(rto);
	sync::SyncHubOptions ho;
	ho.dir = a->get("dir");
	ho.targets = a->all("to");
	ho.links = std::move(*links);
	// A destination that refuses the hub (its token, TLS, the transport's version) is a
	// setup error: found now, not after the first push has gone to the others. All at
	// once and briefly: one that does not answer is only logged, as one that is down.
	std::vector<ResultMsg<void>> probes(ho.links.size());
	std::vector<char> unusable(ho.links.size(), 0); ///< our side's setup (the TLS CA file)
	{
		std::vector<std::thread> threads;
		for (size_t i = 0; i < ho.links.size(); ++i)
			threads.emplace_back([&, i] {
				auto options = ho.links[i];
				options.connectTimeout = std::min(options.connectTimeout, std::chrono::milliseconds(3000));
				auto link = sync::SyncLink::create(rt, options);
				unusable[i] = !link;
				probes[i] = link ? (*link)->connect() : ResultMsg<void>(unexpectedOf(link.error()));
			});
		for (auto &t : threads)
			t.join();
	}
	for (size_t i = 0; i < probes.size(); ++i) {
		if (probes[i])
			continue;
		const auto &e = probes[i].error();
		if (unusable[i]) {
			std::fprintf(stderr, "r3sync: %s: %s\n", ho.targets[i].c_str(), e.message.c_str());
			return 2;
		}
		auto kind = sync::connectErrorKind(e.code.value());
		if (kind == sync::SyncErrorKind::Transient) {
			r3d::log::get("sync")->warn("hub: {}: {} (retried once a push arrives)", ho.targets[i], e.message);
			continue;
		}
		std::fprintf(stderr, "r3sync: %s: %s: %s\n", ho.targets[i].c_str(), refusalWhat(kind), e.message.c_str());
		return refusalStatus(kind);
	}
	sync::SyncHub hubCore(rt, ho);
	hubCore.onPushed = [json](const sync::HubDestinationStatus &s) {
		if (json)
			std::printf("{\"event\":\"pushed\",\"destination\":%s}\n", s.json().c_str());
		else if (s.refused())
			std::printf("%s %s: %s (not retried): %s\n", s.to.c_str(), s.name.c_str(), refusalWhat(s.kind),
				    s.message.c_str());
		else if (s.error)
			std::printf("%s %s: FAILED: %s (lag %llu generations)\n", s.to.c_str(), s.name.c_str(),
				    s.message.c_str(), (unsigned long long)s.lag());
		else
			std::printf("%s %s: generation %llu\n", s.to.c_str(), s.name.c_str(),
				    (unsigned long long)s.ackedGeneration);
		std::fflush(stdout);
	};
	sync::SyncServiceOptions so;
	so.dir = ho.dir;
	so.onApplied = [json, &hubCore](const sync::AppliedGeneration &g, const sync::SyncReceiver &receiver) {
		printApplied(g, json);
		hubCore.applied(g, receiver);
	};
	auto server = startServer(rt, *a, std::move(so));
	if (!server) {
		std::fprintf(stderr, "r3sync: %s\n", server.error().message.c_str());
		return 1;
	}
	for (;;) {
		int sig = waitSignal(signals, 200);
		if (sig == SIGINT || sig == SIGTERM)
			break;
	}
	server->rpc->stop();
	hubCore.stop();
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage("missing the command");
	std::string cmd = argv[1];
	if (cmd == "serve")
		return serve(argc, argv);
	if (cmd == "push")
		return push(argc, argv);
	if (cmd == "hub")
		return hub(argc, argv);
	return usage("unknown command " + cmd);
}
