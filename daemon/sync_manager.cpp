#include "sync_manager.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include <sys/stat.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <r3d/backend_uri.hpp>
#include <r3d/log.hpp>

#include "base/runtime.hpp"
#include "errors.hpp"
#include "sync/sync_hub.hpp"
#include "sync/sync_messages.hpp"
#include "sync/sync_push.hpp"
#include "sync/sync_service.hpp"
#include "transport/block/rpc_server.hpp"
#include "transport/client_security.hpp"

namespace r3mapd {

namespace rs = r3d::sync;

struct SyncManager::Entry {
	SyncInfo info;
	bool stopping = false; ///< guarded by SyncManager::mutex_

	// A push: rounds on `thread`.
	std::unique_ptr<rs::SyncPush> push;
	std::thread thread;
	// A serve or hub.
	std::unique_ptr<r3d::transport::RpcServer> rpc;
	std::shared_ptr<rs::SyncService> service;
	std::unique_ptr<rs::SyncHub> hub;

	// What Sync1 shows, and the push thread's orders.
	mutable std::mutex mutex;
	std::condition_variable changed;
	SyncStatus status;
	uint64_t requested = 1; ///< rounds asked for (the first at once)
	uint64_t begun = 0;
	uint64_t done = 0;
	bool ending = false;

	void stop()
	{
		{
			std::lock_guard lock(mutex);
			ending = true;
		}
		changed.notify_all();
		if (push)
			push->stop();
		if (thread.joinable())
			thread.join();
		// The server first: no session calls into the hub once it is gone.
		if (rpc)
			rpc->stop();
		if (hub)
			hub->stop();
	}

	void runRounds();
	void record(const r3d::ResultMsg<rs::RoundReport> &report);
	void applied(const rs::AppliedGeneration &g);
};

namespace {

uint64_t unixNow()
{
	return static_cast<uint64_t>(std::time(nullptr));
}

// An r3:// destination with the client parameters of r3:// backends, checked as Pull()
// checks its source; `shown` is the URI without them, for the properties.
r3d::ResultMsg<rs::SyncLinkOptions> destination(const std::string &text, const std::string &defaultName,
						 uid_t caller, std::string &shown)
{
	auto uri = r3d::BackendUri::parse(text);
	if (!uri || uri->scheme != "r3" || uri->authority.empty())
		return fail(Errc::InvalidArgument, fmt::format("destination '{}': expected r3://HOST:PORT[/NAME]", text));
	if (auto ok = uri->onlyParams(r3d::transport::ClientSecurity::params()); !ok)
		return fail(Errc::InvalidArgument, fmt::format("destination '{}': {}", text, ok.error().message));
	if (r3d::transport::ClientSecurity::namesFiles(*uri) && caller != 0)
		return fail(Errc::NotPermitted,
			    fmt::format("uid {} may not use tls-ca, tls-cert, tls-key or token-file: r3mapd runs as root "
					"and would read those files for it",
					caller));
	auto security = r3d::transport::ClientSecurity::of(*uri);
	if (!security)
		return fail(Errc::InvalidArgument, fmt::format("destination '{}': {}", text, security.error().message));
	shown = "r3://" + uri->authority + uri->path;
	auto link = rs::parseSyncTarget(shown, defaultName);
	if (!link)
		return fail(Errc::InvalidArgument, fmt::format("destination {}", link.error().message));
	link->tls = std::move(security->tls);
	link->token = std::move(security->token);
	link->clientName = "r3mapd";
	return link;
}

r3d::ResultMsg<void> checkRoot(uid_t caller, const char *what)
{
	if (caller != 0)
		return fail(Errc::NotPermitted,
			    fmt::format("uid {} may not {}: r3mapd runs as root and would read or write those files for it",
					caller, what));
	return {};
}

r3d::ResultMsg<void> checkDirectory(const std::string &dir, const char *what)
{
	if (dir.empty() || dir[0] != '/')
		return fail(Errc::InvalidArgument, fmt::format("{} '{}': expected an absolute path", what, dir));
	struct stat st;
	if (::stat(dir.c_str(), &st) != 0)
		return fail(Errc::InvalidArgument, fmt::format("{} '{}': {}", what, dir, std::strerror(errno)));
	if (!S_ISDIR(st.st_mode))
		return fail(Errc::InvalidArgument, fmt::format("{} '{}' is not a directory", what, dir));
	return {};
}

// A sync's destinations as given, before any round or hub push reported on them.
std::vector<SyncDestinationStatus> pending(const std::vector<std::string> &uris)
{
	std::vector<SyncDestinationStatus> out;
	for (const auto &uri : uris)
		out.push_back({ uri });
	return out;
}

} // namespace

void SyncManager::Entry::runRounds()
{
	std::unique_lock lock(mutex);
	auto next = std::chrono::steady_clock::time_point::max();
	for (;;) {
		auto due = [&] { return ending || requested > begun || std::chrono::steady_clock::now() >= next; };
		if (next == std::chrono::steady_clock::time_point::max())
			changed.wait(lock, due);
		else
			changed.wait_until(lock, next, due);
		if (ending)
			return;
		uint64_t round = ++begun;
		status.state = "syncing";
		auto started = std::chrono::steady_clock::now();
		lock.unlock();
		auto report = push->round();
		lock.lock();
		record(report);
		done = round;
		if (info.interval.count() > 0)
			next = started + info.interval;
		changed.notify_all();
	}
}

void SyncManager::Entry::record(const r3d::ResultMsg<rs::RoundReport> &report)
{
	++status.rounds;
	if (!report) {
		status.state = "failed";
		status.lastError = report.error().message;
		r3d::log::get("sync")->warn("sync {}: {}", info.id, status.lastError);
		return;
	}
	status.lastSync = unixNow();
	status.bytesSent += report->bytesSent;
	status.chunksChanged += report->chunksChanged;
	status.generation = std::max(status.generation, report->generation);
	status.sourceBytes = report->size;
	status.lastError.clear();
	for (size_t i = 0; i < report->destinations.size() && i < status.destinations.size(); ++i) {
		const auto &d = report->destinations[i];
		auto &s = status.destinations[i];
		s.ackedGeneration = d.ackedGeneration;
		s.amount += d.bytesSent;
		if (d.error) {
			s.state = "failed";
			s.error = d.message;
			++s.lag;
			if (status.lastError.empty())
				status.lastError = fmt::format("{}: {}", s.uri, d.message);
		} else {
			s.state = "ok";
			s.error.clear();
			s.lag = 0;
		}
	}
	status.state = report->allAcked() ? "idle" : "degraded";
	r3d::log::get("sync")->debug("sync {}: round {}: {} chunks changed, {} bytes sent{}", info.id, report->round,
				     report->chunksChanged, report->bytesSent,
				     status.lastError.empty() ? "" : ", " + status.lastError);
}

void SyncManager::Entry::applied(const rs::AppliedGeneration &g)
{
	std::lock_guard lock(mutex);
	++status.rounds;
	if (g.error) {
		status.lastError = fmt::format("{}: generation {}: {}", g.name, g.generation, g.message);
		return;
	}
	status.lastSync = unixNow();
	status.generation = std::max(status.generation, g.generation);
	status.bytesSent += g.bytes;
	status.chunksChanged += g.chunks;
	status.sourceBytes = g.size;
	status.lastError.clear();
}

SyncManager::SyncManager(SyncObserver &observer, MountDevice mountDevice)
	: observer_(observer), mountDevice_(std::move(mountDevice))
{
	r3d::RuntimeOptions options;
	options.ioThreads = 2; // a session applies its copy's generations on its strand
	options.blockingThreads = std::max(2u, std::thread::hardware_concurrency());
	runtime_ = std::make_unique<r3d::Runtime>(options);
}

SyncManager::~SyncManager()
{
	entries_.forEach([](const std::string &, const std::shared_ptr<Entry> &e) { e->stop(); });
}

SyncInfo SyncManager::add(std::shared_ptr<Entry> e)
{
	SyncInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		e->info.id = entries_.add(e);
		snapshot = e->info;
	}
	// A push's rounds start once it has its id, for the logs.
	if (e->push)
		e->thread = std::thread([raw = e.get()] { raw->runRounds(); });
	observer_.syncAdded(snapshot);
	r3d::log::get("sync")->info("sync {}: {} {}{}{}", snapshot.id, snapshot.role, snapshot.source,
				    snapshot.listen.empty() ? "" : " on " + snapshot.listen,
				    snapshot.destinations.empty() ? "" : " to " + fmt::format("{}", fmt::join(snapshot.destinations, " ")));
	return snapshot;
}

r3d::ResultMsg<std::string> SyncManager::sourcePath(const SyncStartRequest &request, std::string &name) const
{
	const std::string &source = request.source;
	std::string id = source.starts_with("/org/r3map/mounts/") ? source.substr(18) : source;
	if (!id.empty() && std::all_of(id.begin(), id.end(), ::isdigit)) {
		// A mount's device: any caller the daemon admitted may open it (Mount1.OpenFd).
		auto device = mountDevice_ ? mountDevice_(id) : std::nullopt;
		if (!device)
			return fail(Errc::NotFound, fmt::format("source '{}': no mount {}", source, id));
		if (device->empty())
			return fail(Errc::Busy, fmt::format("source '{}': mount {} is not attached yet", source, id));
		name = "mount" + id;
		return *device;
	}
	if (auto ok = checkRoot(request.callerUid, "name a file to sync"); !ok)
		return r3d::unexpectedOf(ok.error());
	if (source.empty() || source[0] != '/')
		return fail(Errc::InvalidArgument,
			    fmt::format("source '{}': expected an absolute path or a mount id", source));
	struct stat st;
	if (::stat(source.c_str(), &st) != 0)
		return fail(Errc::InvalidArgument, fmt::format("source '{}': {}", source, std::strerror(errno)));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return fail(Errc::InvalidArgument, fmt::format("source '{}' is not a regular file or a block device", source));
	name = std::filesystem::path(source).filename().string();
	return source;
}

r3d::ResultMsg<SyncInfo> SyncManager::start(const SyncStartRequest &request)
{
	std::string name;
	auto path = sourcePath(request, name);
	if (!path)
		return r3d::unexpectedOf(path.error());
	const std::string &source = *path;
	if (request.chunkSize < 4096 || request.chunkSize > rs::kMaxSyncChunk ||
	    (request.chunkSize & (request.chunkSize - 1)) != 0)
		return fail(Errc::InvalidArgument,
			    fmt::format("chunk_size {}: expected a power of two from 4 KiB to 16 MiB", request.chunkSize));
	std::vector<std::string> uris = request.destinations;
	if (!request.hub.empty())
		uris.push_back(request.hub);
	if (uris.empty())
		return fail(Errc::InvalidArgument, "no destination: give at least one r3://HOST:PORT[/NAME] or a hub");
	rs::SyncPushOptions options;
	options.source = source;
	options.chunk = request.chunkSize;
	auto e = std::make_shared<Entry>();
	for (const auto &uri : uris) {
		std::string shown;
		auto link = destination(uri, name, request.callerUid, shown);
		if (!link)
			return r3d::unexpectedOf(link.error());
		link->compress = request.compress;
		options.links.push_back(std::move(*link));
		options.targets.push_back(shown);
		e->info.destinations.push_back(shown);
	}
	auto push = rs::SyncPush::create(*runtime_, runtime_->blocking(), std::move(options));
	if (!push)
		return fail(Errc::BackendFailed, push.error().message);
	e->push = std::move(*push);
	e->info.role = "push";
	e->info.source = source;
	e->info.interval = request.interval;
	e->status.state = "syncing";
	e->status.destinations = pending(e->info.destinations);
	return add(std::move(e));
}

r3d::ResultMsg<SyncInfo> SyncManager::serve(const SyncServeRequest &request)
{
	const char *what = request.hub ? "a sync hub" : "a sync receiver";
	if (auto ok = checkRoot(request.callerUid, request.hub ? "run a sync hub" : "serve a sync directory"); !ok)
		return r3d::unexpectedOf(ok.error());
	if (auto ok = checkDirectory(request.dir, request.hub ? "cache_dir" : "dir"); !ok)
		return r3d::unexpectedOf(ok.error());
	r3d::transport::RpcServerOptions ro;
	if (auto ok = request.security.apply(request.callerUid, request.listen, what, ro); !ok)
		return r3d::unexpectedOf(ok.error());
	ro.maxPayload = static_cast<uint32_t>(rs::kMaxSyncChunk);
	auto e = std::make_shared<Entry>();
	rs::SyncHubOptions ho;
	if (request.hub) {
		if (request.destinations.empty())
			return fail(Errc::InvalidArgument, "a hub needs at least one destination r3://HOST:PORT");
		for (const auto &uri : request.destinations) {
			std::string shown;
			auto link = destination(uri, "hub", request.callerUid, shown);
			if (!link)
				return r3d::unexpectedOf(link.error());
			link->compress = request.compress;
			ho.links.push_back(std::move(*link));
			ho.targets.push_back(shown);
			e->info.destinations.push_back(shown);
		}
		ho.dir = request.dir;
	} else if (!request.destinations.empty()) {
		return fail(Errc::InvalidArgument, "a receiver has no destinations (a hub has)");
	}
	auto rpc = r3d::transport::RpcServer::create(*runtime_, ro);
	if (!rpc) {
		Errc errc = classify(rpc.error().code);
		return fail(errc == Errc::InvalidArgument ? errc : Errc::Failed, rpc.error().message);
	}
	e->rpc = std::move(*rpc);
	if (request.hub)
		e->hub = std::make_unique<rs::SyncHub>(*runtime_, ho);
	rs::SyncServiceOptions so;
	so.dir = request.dir;
	so.receiver.mode = request.renameApply ? rs::ApplyMode::Rename : rs::ApplyMode::Journal;
	so.receiver.verify = request.verify;
	// The entry outlives its server: stop() ends the server before the entry goes.
	so.onApplied = [raw = e.get()](const rs::AppliedGeneration &g, const rs::SyncReceiver &receiver) {
		raw->applied(g);
		if (raw->hub)
			raw->hub->applied(g, receiver);
	};
	e->service = std::make_shared<rs::SyncService>(std::move(so), &runtime_->blocking());
	e->service->addTo(*e->rpc);
	auto address = e->rpc->listen(request.listen);
	if (!address) {
		e->stop();
		return failListen(r3d::Error{ address.error().code,
					      fmt::format("listen '{}': {}", request.listen, address.error().message) });
	}
	e->rpc->start();
	e->info.role = request.hub ? "hub" : "serve";
	e->info.source = request.dir;
	e->info.listen = *address;
	e->status.state = "serving";
	return add(std::move(e));
}

r3d::ResultMsg<void> SyncManager::syncNow(const std::string &id)
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = entries_.find(id);
		if (!e || e->stopping)
			return fail(Errc::NotFound, fmt::format("no sync '{}'", id));
	}
	if (!e->push)
		return fail(Errc::NotSupported,
			    fmt::format("sync {} is a {}: its senders push (SyncNow on the pushing side)", id, e->info.role));
	std::unique_lock lock(e->mutex);
	// A round that starts after this call: one running now may have hashed the source
	// before the caller's last write.
	uint64_t wanted = e->begun + 1;
	e->requested = std::max(e->requested, wanted);
	e->changed.notify_all();
	e->changed.wait(lock, [&] { return e->ending || e->done >= wanted; });
	if (e->done < wanted)
		return fail(Errc::Busy, fmt::format("sync {} is stopping", id));
	if (e->status.state == "failed")
		return fail(Errc::BackendFailed, fmt::format("sync {}: {}", id, e->status.lastError));
	return {};
}

r3d::ResultMsg<void> SyncManager::stop(const std::string &id)
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = entries_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no sync '{}'", id));
		if (e->stopping)
			return fail(Errc::Busy, fmt::format("sync {} is already stopping", id));
		e->stopping = true;
	}
	e->stop();
	{
		std::lock_guard lock(mutex_);
		entries_.erase(id);
	}
	observer_.syncRemoved(id);
	r3d::log::get("sync")->info("sync {}: stopped", id);
	return {};
}

std::optional<SyncStatus> SyncManager::status(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = entries_.find(id);
	}
	if (!e)
		return std::nullopt;
	SyncStatus out;
	{
		std::lock_guard lock(e->mutex);
		out = e->status;
	}
	if (e->hub) {
		auto hub = e->hub->status();
		if (!hub.empty())
			out.destinations.clear();
		for (const auto &h : hub) {
			SyncDestinationStatus d;
			d.uri = h.name.empty() ? h.to : fmt::format("{}/{}", h.to, h.name);
			d.ackedGeneration = h.ackedGeneration;
			d.lag = h.lag();
			d.amount = h.pendingChunks;
			d.state = h.error ? "failed" : "ok";
			d.error = h.message;
			out.destinations.push_back(std::move(d));
		}
		if (hub.empty())
			out.destinations = pending(e->info.destinations);
	}
	return out;
}

std::vector<SyncInfo> SyncManager::list() const
{
	std::vector<SyncInfo> out;
	std::lock_guard lock(mutex_);
	entries_.forEach([&](const std::string &, const std::shared_ptr<Entry> &e) { out.push_back(e->info); });
	return out;
}

void SyncManager::stopAll()
{
	for (const auto &info : list())
		(void)stop(info.id);
}

} // namespace r3mapd
