#include "export_manager.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>
#include <r3d/size.hpp>
#include <r3d/unique_fd.hpp>

#include "access_policy.hpp"
#include "backend_opener.hpp"
#include "managed_opener.hpp"
#include "push_progress.hpp"
#include "stages/pipeline.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "base/host_port.hpp"
#include "nbd/listener.hpp"
#include "nbd/tls_policy.hpp"
#include "nbd_export.hpp"
#include "transport/tls.hpp"
#include "r3_export.hpp"
#include "r3_security.hpp"
#include "sync_managed.hpp"

namespace r3mapd {

struct ExportManager::Entry {
	ExportInfo info;
	std::unique_ptr<ServedExport> served;
	std::shared_ptr<r3d::mount::ManagedRegion> region; ///< a managed export's
	bool stopping = false;      ///< guarded by ExportManager::mutex_
	bool servedStopped = false; ///< only the region's final push is left; set while stopping
	PushProgress pushed;
	std::shared_ptr<r3d::ReadWriterAt> top; ///< what the clients read and write through: `diverter`
	std::shared_ptr<r3d::stages::LockableReadWriterAt> diverter;
	/// Leases out; taken under ExportManager::mutex_, given back from anywhere.
	std::atomic<unsigned> leases{ 0 };
};

namespace {

constexpr mode_t kSocketMode = 0660;
constexpr const char *kKind = "exports";

// What a managed export's spec holds; the caller's uid decides again at restore what the
// daemon opens for it.
nlohmann::json specOf(const ExportRequest &r, const ExportInfo &info)
{
	return { { "kind", "managed" },
		 { "backend", r.backendUri },
		 { "listen", info.listen },
		 { "protocol", r.protocol },
		 { "name", r.name },
		 { "description", r.description },
		 { "caller_uid", r.callerUid },
		 { "managed", r.managed->spec(std::stoull(info.managedOptions.at("chunk-size"))) },
		 { "tls", r.tls },
		 { "tls_cert", r.tlsCert },
		 { "tls_key", r.tlsKey },
		 { "tls_ca", r.tlsCa },
		 { "tls_psk", r.tlsPsk },
		 { "token_file", r.tokenFile } };
}

r3d::ResultMsg<ExportRequest> requestOf(const nlohmann::json &spec)
{
	return requestFromSpec<ExportRequest>(spec, "an export", [&](ExportRequest &r) {
		r.listen = spec.at("listen").get<std::string>();
		r.protocol = spec.at("protocol").get<std::string>();
		r.name = spec.at("name").get<std::string>();
		r.description = spec.at("description").get<std::string>();
		// Specs journaled before exports had TLS have none of these.
		r.tls = spec.value("tls", "");
		r.tlsCert = spec.value("tls_cert", "");
		r.tlsKey = spec.value("tls_key", "");
		r.tlsCa = spec.value("tls_ca", "");
		r.tlsPsk = spec.value("tls_psk", "");
		r.tokenFile = spec.value("token_file", "");
	});
}

bool hasTlsFiles(const ExportRequest &r)
{
	return !r.tlsCert.empty() || !r.tlsKey.empty() || !r.tlsCa.empty() || !r.tlsPsk.empty();
}

// The NBD server's TLS: the policy (as r3serve's --tls resolves it) and the context.
r3d::ResultMsg<void> nbdTls(const ExportRequest &r, r3d::nbd::ServerOptions &options)
{
	if (hasTlsFiles(r) && r.callerUid != 0)
		return fail(Errc::NotPermitted,
			    fmt::format("uid {} may not use tls_cert, tls_key, tls_ca or tls_psk: r3mapd runs as root and "
					"would read those files for it",
					r.callerUid));
	bool credentials = !r.tlsCert.empty() || !r.tlsPsk.empty();
	auto policy = r.tls.empty() ? (credentials ? r3d::nbd::TlsPolicy::Require : r3d::nbd::TlsPolicy::Off)
				    : r3d::nbd::parseTlsPolicy(r.tls);
	if (!policy)
		return fail(Errc::InvalidArgument, fmt::format("option 'tls': '{}': expected off, on or require", r.tls));
	if (*policy == r3d::nbd::TlsPolicy::Off && hasTlsFiles(r))
		return fail(Errc::InvalidArgument, "option 'tls' is off: it does not take tls_cert, tls_key, tls_ca or tls_psk");
	if (*policy != r3d::nbd::TlsPolicy::Off && !credentials)
		return fail(Errc::InvalidArgument, fmt::format("option 'tls' {} needs tls_cert and tls_key, or tls_psk",
							       r3d::nbd::tlsPolicyName(*policy)));
	options.tls = *policy;
	if (*policy == r3d::nbd::TlsPolicy::Off)
		return {};
	r3d::transport::TlsServerConfig config{ r.tlsCert, r.tlsKey, r.tlsCa, r.tlsPsk };
	config.allowTls12 = true; // NBD's spec: TLS 1.2 MUST work
	auto ctx = r3d::transport::makeServerTlsContext(config);
	if (!ctx)
		return fail(Errc::InvalidArgument, ctx.error().message);
	options.tlsContext = std::move(*ctx);
	return {};
}

// The unit's UMask=0077 leaves a new socket 0700 root: give it to the access group.
r3d::ResultMsg<void> shareSocket(const std::string &path, std::optional<gid_t> gid)
{
	if (!gid)
		return {}; // the group does not exist (yet): root only
	// Through an O_PATH descriptor of exactly the socket we bound: a path swapped for a
	// symlink or another file since is refused, never followed.
	r3d::UniqueFd node(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
	struct stat st {};
	if (!node || ::fstat(node.get(), &st) != 0)
		return fail(Errc::Failed, fmt::format("cannot open the socket '{}' to give it to the access group: {}",
						      path, std::strerror(errno)));
	if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid())
		return fail(Errc::Failed, fmt::format("'{}' was replaced while the export was set up", path));
	if (::fchownat(node.get(), "", static_cast<uid_t>(-1), *gid, AT_EMPTY_PATH) != 0
	    || ::chmod(fmt::format("/proc/self/fd/{}", node.get()).c_str(), kSocketMode) != 0)
		return fail(Errc::Failed, fmt::format("cannot give the socket '{}' to group {}: {}", path, *gid,
						      std::strerror(errno)));
	return {};
}

} // namespace

ExportManager::ExportManager(const Config &config, const AccessPolicy &access, ExportObserver &observer,
			     r3d::Runtime *runtime, StateStore &state)
	: config_(config), access_(access), observer_(observer), runtime_(runtime), state_(state)
{
	exports_.reserveBelow(state_.nextId(kKind));
}

ExportManager::~ExportManager()
{
	exports_.forEach([](const std::string &, const std::shared_ptr<Entry> &e) {
		if (!e->servedStopped)
			e->served->stop();
	});
}

r3d::ResultMsg<std::unique_ptr<ServedExport>> ExportManager::serve(const ExportRequest &request,
								    std::shared_ptr<r3d::ReadWriterAt> backend,
								    std::shared_ptr<r3d::nbd::MetaSource> meta)
{
	if (request.protocol == "r3") {
		if (!request.tls.empty() || !request.tlsPsk.empty())
			return fail(Errc::InvalidArgument, "the options tls and tls_psk are for nbd exports: r3 exports take "
							   "tls_cert, tls_key, tls_ca and token_file");
		if (!runtime_)
			return fail(Errc::Failed, "r3 exports need the daemon's runtime");
		if (r3d::nbd::Listener::unixPathOf(request.listen))
			return fail(Errc::InvalidArgument, "r3 exports listen on HOST:PORT, not on a UNIX socket");
		r3d::transport::RpcServerOptions options;
		options.maxPayload = static_cast<uint32_t>(config_.maxRequestSize);
		R3Security security{ request.tlsCert, request.tlsKey, request.tlsCa, request.tokenFile };
		if (auto secured = security.apply(request.callerUid, request.listen, "an r3 export", options); !secured)
			return r3d::unexpectedOf(secured.error());
		auto server = r3d::transport::RpcServer::create(*runtime_, options);
		if (!server)
			return fail(security.any() ? Errc::InvalidArgument : Errc::Failed, server.error().message);
		(*server)->addExport({ request.name, std::move(backend), 0, request.readOnly });
		auto address = (*server)->listen(request.listen);
		if (!address)
			return failListen(std::move(address.error()));
		return std::unique_ptr<ServedExport>(std::make_unique<R3Export>(std::move(*server), *address));
	}
	if (request.protocol != "nbd")
		return fail(Errc::InvalidArgument, fmt::format("protocol '{}': expected nbd or r3", request.protocol));
	if (!request.tokenFile.empty())
		return fail(Errc::InvalidArgument, "token_file is for r3 exports (NBD has no tokens: use tls_ca or tls_psk)");
	r3d::nbd::ServerOptions options;
	options.maxPayload = static_cast<uint32_t>(config_.maxRequestSize);
	options.runtime = runtime_;
	if (auto tls = nbdTls(request, options); !tls)
		return r3d::unexpectedOf(tls.error());
	auto server = std::make_unique<r3d::nbd::Server>(options);
	server->addExport({ request.name, request.description, std::move(backend), request.readOnly, std::move(meta) });
	if (request.listen.empty())
		return fail(Errc::InvalidArgument, "listen address is empty: give HOST:PORT or unix:PATH");
	auto served = NbdExport::listen(std::move(server), request.listen);
	if (!served)
		return r3d::unexpectedOf(served.error());
	if (r3d::nbd::Listener::unixPathOf(request.listen)) {
		if (auto shared = shareSocket((*served)->address(), access_.groupId()); !shared)
			return r3d::unexpectedOf(shared.error());
	}
	r3d::nbd::warnIfServedInClear((*served)->address(), options.tls,
				      "give the export the options tls_cert and tls_key, or tls_psk");
	return std::unique_ptr<ServedExport>(std::move(*served));
}

r3d::ResultMsg<ExportInfo> ExportManager::start(const ExportRequest &request)
{
	return start(request, std::nullopt);
}

r3d::ResultMsg<ExportInfo> ExportManager::start(const ExportRequest &request, std::optional<uint64_t> id)
{
	if (request.protocol != "nbd" && request.protocol != "r3")
		return fail(Errc::InvalidArgument, fmt::format("protocol '{}': expected nbd or r3", request.protocol));
	if (request.managed && request.readOnly)
		return fail(Errc::InvalidArgument, "managed does not go with read_only: export the remote directly instead");
	std::shared_ptr<r3d::mount::ManagedRegion> region;
	std::shared_ptr<r3d::ReadWriterAt> top;
	std::string description;
	if (request.managed) {
		auto opened = openManagedRegion(config_, state_.dir(), request.backendUri, std::nullopt, *request.managed,
						request.callerUid, runtime_);
		if (!opened)
			return r3d::unexpectedOf(opened.error());
		region = std::move(*opened);
		top = region->top();
		auto s = region->status();
		description = fmt::format("managed, chunk {}, cache {}{}", r3d::formatSize(s.chunk),
					  s.cache.empty() ? "in memory" : s.cache, s.resumed ? ", resumed" : "");
	} else {
		auto backend = openAllowedBackend(config_, request.backendUri, std::nullopt, request.callerUid, runtime_);
		if (!backend)
			return r3d::unexpectedOf(backend.error());
		// NBD and r3 clients may send any offset and length.
		auto pipeline = r3d::stages::buildPipeline(std::move(*backend), {});
		if (!pipeline)
			return rename(Errc::InvalidArgument, pipeline.error());
		top = std::move(pipeline->top);
		description = pipeline->description;
	}
	// Under everything clients read and write: a seeder diverts the export's I/O here.
	auto diverter = std::make_shared<r3d::stages::LockableReadWriterAt>(std::move(top));
	top = diverter;
	auto served = serve(request, top, region ? region->meta() : nullptr);
	if (!served)
		return r3d::unexpectedOf(served.error());

	auto e = std::make_shared<Entry>();
	e->served = std::move(*served);
	e->region = region;
	e->top = top;
	e->diverter = std::move(diverter);
	e->info.backendUri = request.backendUri;
	e->info.listen = r3d::nbd::Listener::unixPathOf(request.listen) ? "unix:" + e->served->address() : e->served->address();
	e->info.name = request.name;
	e->info.protocol = request.protocol;
	e->info.size = top->size();
	e->info.readOnly = request.readOnly;
	if (region) {
		e->info.kind = r3d::mount::MountKind::Managed;
		e->info.managedOptions = request.managed->given;
		e->info.managedOptions["chunk-size"] = std::to_string(region->chunk());
		e->info.managedOptions.erase("discard-local");
	}

	ExportInfo snapshot;
	uint64_t next = 0;
	{
		std::lock_guard lock(mutex_);
		e->info.id = exports_.add(e, id);
		next = exports_.nextId();
		snapshot = e->info;
	}
	auto log = r3d::log::get("export");
	// No crash makes an id come back: /org/r3map/exports/N names one export, ever.
	if (auto ok = state_.setNextId(kKind, next); !ok)
		log->warn("export {}: {}", snapshot.id, ok.error().message);
	if (region)
		if (auto ok = state_.save(kKind, snapshot.id, specOf(request, snapshot)); !ok)
			log->warn("export {}: not journaled: {}", snapshot.id, ok.error().message);
	observer_.exportAdded(snapshot);
	log->info("export {}: serving {} over {} ({}, {}{}) on {}", snapshot.id, snapshot.backendUri, snapshot.protocol,
		  r3d::formatSize(snapshot.size), description, snapshot.readOnly ? ", read-only" : "", snapshot.listen);
	return snapshot;
}

r3d::ResultMsg<PipelineLease> ExportManager::lease(const std::string &id)
{
	std::lock_guard lock(mutex_);
	auto e = exports_.find(id);
	if (!e)
		return fail(Errc::NotFound, fmt::format("no export '{}'", id));
	if (e->stopping)
		return fail(Errc::Busy, fmt::format("export {} is stopping", id));
	++e->leases;
	PipelineLease l;
	l.pipeline = e->top;
	l.hold = std::shared_ptr<void>(e.get(), [e](void *) { --e->leases; });
	l.name = fmt::format("export {}", id);
	l.backendUri = e->info.backendUri;
	l.readOnly = e->info.readOnly;
	l.diverter = e->diverter;
	return l;
}

r3d::ResultMsg<void> ExportManager::stop(const std::string &id, const StopOptions &options)
{
	return stop(id, options, true);
}

r3d::ResultMsg<void> ExportManager::stop(const std::string &id, const StopOptions &options, bool forget)
{
	auto log = r3d::log::get("export");
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no export '{}'", id));
		if (e->stopping)
			return fail(Errc::Busy, fmt::format("export {} is already stopping", id));
		if (unsigned n = e->leases.load())
			return fail(Errc::Busy,
				    fmt::format("export {} is lent to {} memory region{} or migration{}: unmap or cancel {} first",
						id, n, n == 1 ? "" : "s", n == 1 ? "" : "s", n == 1 ? "it" : "them"));
		e->stopping = true;
	}
	auto pushFailed = [&](const r3d::Error &error, const char *then) {
		log->error("export {}: {}; {}", id, error.message, then);
		std::lock_guard lock(mutex_);
		e->stopping = false;
		return fail(Errc::BackendFailed, fmt::format("{}; {}", error.message, then));
	};
	if (e->region && options.discardDirty)
		log->warn("export {}: stopping with discard-dirty: what is dirty is not pushed to {}", id, e->info.backendUri);
	// While it still serves, so a failed push leaves it as it was.
	if (e->region && !options.discardDirty && !e->servedStopped)
		if (auto ok = e->region->syncAll(e->pushed.callback()); !ok)
			return pushFailed(ok.error(), "the export goes on serving (Stop again, or discard-dirty)");
	if (!e->servedStopped) {
		e->served->stop();
		e->servedStopped = true;
	}
	// What clients wrote since the push above.
	if (e->region)
		if (auto ok = e->region->close(options.discardDirty, e->pushed.callback()); !ok)
			return pushFailed(ok.error(), "the export no longer serves (Stop again, or discard-dirty)");
	{
		std::lock_guard lock(mutex_);
		exports_.erase(id);
	}
	if (forget)
		if (auto ok = state_.remove(kKind, id); !ok)
			log->warn("export {}: {}", id, ok.error().message);
	observer_.exportRemoved(id);
	log->info("export {}: stopped{}", id, e->region && !forget ? " (kept for the next start)" : "");
	return {};
}

r3d::ResultMsg<void> ExportManager::sync(const std::string &id)
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no export '{}'", id));
		if (!e->region)
			return fail(Errc::NotSupported, fmt::format("export {} is not managed: it has nothing to sync", id));
		if (e->stopping)
			return fail(Errc::Busy, fmt::format("export {} is stopping", id));
	}
	return syncManaged(*e->region, e->pushed, "export", id);
}

std::optional<r3d::mount::ManagedStatus> ExportManager::managedStatus(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
	}
	if (!e || !e->region)
		return std::nullopt;
	return e->pushed.statusOf(*e->region);
}

void ExportManager::restore(const std::function<bool(std::function<void()>)> &defer)
{
	auto log = r3d::log::get("export");
	std::vector<std::string> bad;
	for (const auto &[id, spec] : state_.load(kKind, &bad)) {
		auto request = spec.value("kind", "") == "managed" ? requestOf(spec)
								   : fail(Errc::InvalidArgument, "not a managed export");
		if (!request) {
			log->error("export {}: cannot restore it: {}; its spec stays in {}", id, request.error().message,
				   state_.dir());
			continue;
		}
		log->info("export {}: restoring the managed export of {} on {}", id, request->backendUri, request->listen);
		auto job = [this, n = *parseObjectId(id), id = id, request = std::move(*request)] {
			auto ok = start(request, n);
			if (ok)
				return;
			// What no restart can fix (the configuration no longer allows it) is dropped;
			// the rest (an unreachable remote, a taken address) is tried again next time.
			Errc errc = classify(ok.error().code);
			bool permanent = errc == Errc::InvalidArgument || errc == Errc::BadUri
					 || errc == Errc::SchemeNotAllowed || errc == Errc::NotPermitted;
			r3d::log::get("export")->error("export {}: restore failed: {}; {}", id, ok.error().message,
						       permanent ? "its spec is dropped" : "a restart tries again");
			if (permanent)
				(void)state_.remove(kKind, id);
		};
		if (!defer || !defer(job))
			job();
	}
	for (const auto &b : bad)
		log->warn("state: ignoring {}", b);
}

std::vector<ExportInfo> ExportManager::list() const
{
	std::lock_guard lock(mutex_);
	std::vector<ExportInfo> out;
	exports_.forEach([&](const std::string &, const std::shared_ptr<Entry> &e) { out.push_back(e->info); });
	return out;
}

std::optional<r3d::Counters> ExportManager::counters(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
	}
	if (!e)
		return std::nullopt;
	return e->served->counters();
}

uint64_t ExportManager::activeConnections(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
	}
	return e ? e->served->activeConnections() : 0;
}

void ExportManager::stopAll()
{
	for (const auto &info : list()) {
		auto ok = stop(info.id, {}, info.kind != r3d::mount::MountKind::Managed);
		if (!ok)
			r3d::log::get("export")->error("export {}: {}", info.id, ok.error().message);
	}
}

} // namespace r3mapd
