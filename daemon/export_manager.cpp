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
#include "nbd/listener.hpp"
#include "object_id.hpp"

namespace r3mapd {

struct ExportManager::Entry {
	ExportInfo info;
	std::unique_ptr<r3d::nbd::Server> server;
	std::unique_ptr<r3d::nbd::Listener> listener;
	std::thread acceptor;
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
	exports_.forEach([](const std::string &, const std::shared_ptr<Entry> &e) { shutdown(*e); });
}

r3d::ResultMsg<ExportInfo> ExportManager::start(const ExportRequest &request)
{
	auto backend = openAllowedBackend(config_, request.backendUri, std::nullopt, request.callerUid, runtime_);
	if (!backend)
		return r3d::unexpectedOf(backend.error());
	// NBD clients may send any offset and length.
	auto pipeline = r3d::stages::buildPipeline(std::move(*backend), {});
	if (!pipeline)
		return rename(Errc::InvalidArgument, pipeline.error());

	auto e = std::make_shared<Entry>();
	r3d::nbd::ServerOptions options;
	options.maxPayload = static_cast<uint32_t>(config_.maxRequestSize);
	options.runtime = runtime_;
	e->server = std::make_unique<r3d::nbd::Server>(options);
	e->server->addExport({ request.name, request.description, pipeline->top, request.readOnly });
	auto listener = listen(*e->server, request.listen);
	if (!listener)
		return r3d::unexpectedOf(listener.error());
	e->listener = std::move(*listener);
	const bool onUnixSocket = unixPath(request.listen).has_value();
	if (onUnixSocket) {
		if (auto shared = shareSocket(e->listener->address(), access_.groupId()); !shared)
			return r3d::unexpectedOf(shared.error());
	}
	e->info = ExportInfo{ "", request.backendUri,
			      onUnixSocket ? std::string(kUnixPrefix) + e->listener->address() : e->listener->address(),
			      request.name, pipeline->top->size(), request.readOnly };
	e->acceptor = std::thread([listener = e->listener.get()] { listener->run(); });

	ExportInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		e->info.id = exports_.add(e);
		snapshot = e->info;
	}
	observer_.exportAdded(snapshot);
	r3d::log::get("export")->info("export {}: serving {} ({}{}) on {}", snapshot.id, snapshot.backendUri,
				      r3d::formatSize(snapshot.size), snapshot.readOnly ? ", read-only" : "",
				      snapshot.listen);
	return snapshot;
}

void ExportManager::shutdown(Entry &e)
{
	// Connections first: the listener waits for their threads.
	e.server->shutdown();
	e.listener->stop();
	if (e.acceptor.joinable())
		e.acceptor.join();
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
	shutdown(*e);
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

std::optional<r3d::nbd::Stats> ExportManager::stats(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = exports_.find(id);
	}
	if (!e)
		return std::nullopt;
	return e->server->stats();
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
