#include "export_manager.hpp"

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
#include "stages/pipeline.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "base/host_port.hpp"
#include "nbd/listener.hpp"
#include "nbd_export.hpp"
#include "r3_export.hpp"

namespace r3mapd {

struct ExportManager::Entry {
	ExportInfo info;
	std::unique_ptr<ServedExport> served;
	bool stopping = false; ///< guarded by ExportManager::mutex_
};

namespace {

constexpr std::string_view kUnixPrefix = "unix:";

// The socket path of "unix:PATH" or "/PATH"; nullopt for HOST:PORT.
std::optional<std::string> unixPath(const std::string &address)
{
	if (address.starts_with(kUnixPrefix))
		return address.substr(kUnixPrefix.size());
	if (address.starts_with("/"))
		return address;
	return std::nullopt;
}
constexpr mode_t kSocketMode = 0660;

bool isLoopback(const std::string &host)
{
	return host == "localhost" || host == "::1" || host.starts_with("127.");
}

r3d::ResultMsg<std::unique_ptr<r3d::nbd::Listener>> listen(r3d::nbd::Server &server, const std::string &address)
{
	if (address.empty())
		return fail(Errc::InvalidArgument, "listen address is empty: give HOST:PORT or unix:PATH");
	auto path = unixPath(address);
	auto listener = path ? r3d::nbd::Listener::listenUnix(server, *path) : r3d::nbd::Listener::listenTcp(server, address);
	if (!listener) {
		// The caller was admitted: EACCES or ENOENT here are the daemon's (a port below 1024,
		// a socket directory), not a refusal of the caller or a missing object.
		Errc errc = classify(listener.error().code);
		if (errc != Errc::AddressInUse && errc != Errc::InvalidArgument)
			errc = Errc::Failed;
		return fail(errc, listener.error().message);
	}
	return listener;
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
			     r3d::Runtime *runtime)
	: config_(config), access_(access), observer_(observer), runtime_(runtime)
{
}

ExportManager::~ExportManager()
{
	exports_.forEach([](const std::string &, const std::shared_ptr<Entry> &e) { e->served->stop(); });
}

r3d::ResultMsg<std::unique_ptr<ServedExport>> ExportManager::serve(const ExportRequest &request,
								    std::shared_ptr<r3d::ReadWriterAt> backend)
{
	if (request.protocol == "r3") {
		if (!runtime_)
			return fail(Errc::Failed, "r3 exports need the daemon's runtime");
		if (unixPath(request.listen))
			return fail(Errc::InvalidArgument, "r3 exports listen on HOST:PORT, not on a UNIX socket");
		auto hostPort = r3d::parseHostPort(request.listen, "0");
		if (!hostPort)
			return fail(Errc::InvalidArgument, hostPort.error().message);
		// No TLS or token options here yet: plaintext r3 stays on loopback.
		if (!isLoopback(hostPort->host))
			return fail(Errc::InvalidArgument, fmt::format("r3 exports listen on a loopback address for now "
								       "(127.0.0.1, [::1], localhost), not '{}'",
								       hostPort->host));
		r3d::transport::RpcServerOptions options;
		options.maxPayload = static_cast<uint32_t>(config_.maxRequestSize);
		auto server = r3d::transport::RpcServer::create(*runtime_, options);
		if (!server)
			return fail(Errc::Failed, server.error().message);
		(*server)->addExport({ request.name, std::move(backend), 0, request.readOnly });
		auto address = (*server)->listen(request.listen);
		if (!address) {
			Errc errc = classify(address.error().code);
			return fail(errc == Errc::AddressInUse || errc == Errc::InvalidArgument ? errc : Errc::Failed,
				    address.error().message);
		}
		return std::unique_ptr<ServedExport>(std::make_unique<R3Export>(std::move(*server), *address));
	}
	if (request.protocol != "nbd")
		return fail(Errc::InvalidArgument, fmt::format("protocol '{}': expected nbd or r3", request.protocol));
	r3d::nbd::ServerOptions options;
	options.maxPayload = static_cast<uint32_t>(config_.maxRequestSize);
	options.runtime = runtime_;
	auto server = std::make_unique<r3d::nbd::Server>(options);
	server->addExport({ request.name, request.description, std::move(backend), request.readOnly });
	auto listener = listen(*server, request.listen);
	if (!listener)
		return r3d::unexpectedOf(listener.error());
	if (unixPath(request.listen)) {
		if (auto shared = shareSocket((*listener)->address(), access_.groupId()); !shared)
			return r3d::unexpectedOf(shared.error());
	}
	return std::unique_ptr<ServedExport>(std::make_unique<NbdExport>(std::move(server), std::move(*listener)));
}

r3d::ResultMsg<ExportInfo> ExportManager::start(const ExportRequest &request)
{
	if (request.protocol != "nbd" && request.protocol != "r3")
		return fail(Errc::InvalidArgument, fmt::format("protocol '{}': expected nbd or r3", request.protocol));
	auto backend = openAllowedBackend(config_, request.backendUri, std::nullopt, request.callerUid, runtime_);
	if (!backend)
		return r3d::unexpectedOf(backend.error());
	// NBD and r3 clients may send any offset and length.
	auto pipeline = r3d::stages::buildPipeline(std::move(*backend), {});
	if (!pipeline)
		return rename(Errc::InvalidArgument, pipeline.error());
	auto served = serve(request, pipeline->top);
	if (!served)
		return r3d::unexpectedOf(served.error());

	auto e = std::make_shared<Entry>();
	e->served = std::move(*served);
	e->info.backendUri = request.backendUri;
	e->info.listen = unixPath(request.listen) ? std::string(kUnixPrefix) + e->served->address() : e->served->address();
	e->info.name = request.name;
	e->info.protocol = request.protocol;
	e->info.size = pipeline->top->size();
	e->info.readOnly = request.readOnly;

	ExportInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		e->info.id = exports_.add(e);
		snapshot = e->info;
	}
	observer_.exportAdded(snapshot);
	r3d::log::get("export")->info("export {}: serving {} over {} ({}, {}{}) on {}", snapshot.id, snapshot.backendUri,
				      snapshot.protocol, r3d::formatSize(snapshot.size), pipeline->description,
				      snapshot.readOnly ? ", read-only" : "", snapshot.listen);
	return snapshot;
}

r3d::ResultMsg<void> ExportManager::stop(const std::string &id)
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no export '{}'", id));
		if (e->stopping)
			return fail(Errc::Busy, fmt::format("export {} is already stopping", id));
		e->stopping = true;
	}
	e->served->stop();
	{
		std::lock_guard lock(mutex_);
		exports_.erase(id);
	}
	observer_.exportRemoved(id);
	r3d::log::get("export")->info("export {}: stopped", id);
	return {};
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
		auto ok = stop(info.id);
		if (!ok)
			r3d::log::get("export")->error("export {}: {}", info.id, ok.error().message);
	}
}

} // namespace r3mapd
