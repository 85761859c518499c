#include "service/manager_object.hpp"

#include <fmt/format.h>

#include "errors.hpp"
#include "service/async_call.hpp"
#include "service/request_options.hpp"

namespace r3mapd::service {

ManagerObject::ManagerObject(sdbus::IConnection &connection, ServiceState &state)
	: AdaptorInterfaces(connection, kRootPath), state_(state)
{
	registerAdaptor();
}

ManagerObject::~ManagerObject()
{
	unregisterAdaptor();
}

namespace {

// Mount and Export: the caller is admitted, then the options are parsed on the bus thread,
// then `create` runs on a worker and the new object's path is the reply.
template <class Parse, class Create>
void createObject(ServiceState &state, const sdbus::IObject &object, sdbus::Result<sdbus::ObjectPath> &&result,
		  const std::string &action, Parse parse, Create create, const char *prefix)
{
	auto caller = admit(state, object, result, action);
	if (!caller)
		return;
	auto request = parse();
	if (!request) {
		replyError(result, toDbusError(request.error()));
		return;
	}
	// The uid the bus reported decides which backends the daemon opens for the caller.
	request->callerUid = caller->uid;
	runAsync(state, std::move(result),
		 [request = std::move(*request), create, prefix]() -> r3d::ResultMsg<sdbus::ObjectPath> {
			 auto info = create(request);
			 if (!info)
				 return r3d::unexpectedOf(info.error());
			 return sdbus::ObjectPath(prefix + info->id);
		 });
}

template <class Info>
std::vector<sdbus::ObjectPath> pathsOf(const std::vector<Info> &infos, const char *prefix)
{
	std::vector<sdbus::ObjectPath> out;
	for (const auto &info : infos)
		out.emplace_back(prefix + info.id);
	return out;
}

} // namespace

void ManagerObject::Mount(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri,
			  std::map<std::string, sdbus::Variant> options)
{
	auto action = fmt::format("Mount {}", backend_uri);
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return mountRequest(std::move(backend_uri), options); },
		[&mounts = state_.context.mounts](const MountRequest &r) { return mounts.mount(r); }, kMountsPath);
}

std::vector<sdbus::ObjectPath> ManagerObject::ListMounts()
{
	return pathsOf(state_.context.mounts.list(), kMountsPath);
}

void ManagerObject::Export(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri, std::string listen,
			   std::map<std::string, sdbus::Variant> options)
{
	auto action = fmt::format("Export {} on {}", backend_uri, listen);
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return exportRequest(std::move(backend_uri), std::move(listen), options); },
		[&exports = state_.context.exports](const ExportRequest &r) { return exports.start(r); }, kExportsPath);
}

std::vector<sdbus::ObjectPath> ManagerObject::ListExports()
{
	return pathsOf(state_.context.exports.list(), kExportsPath);
}

void ManagerObject::Seed(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri, std::string listen,
			 std::map<std::string, sdbus::Variant> options)
{
	auto *migrations = state_.context.migrations;
	if (!migrations) {
		replyError(result, toDbusError(r3d::Error{ make_error_code(Errc::NotSupported), "no migrations here" }));
		return;
	}
	auto action = fmt::format("Seed {} on {}", backend_uri, listen);
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return seedRequest(std::move(backend_uri), std::move(listen), options); },
		[migrations](const SeedRequest &r) { return migrations->seed(r); }, kMigrationsPath);
}

void ManagerObject::Pull(sdbus::Result<sdbus::ObjectPath> &&result, std::string source, std::string export_listen,
			 std::map<std::string, sdbus::Variant> options)
{
	auto *migrations = state_.context.migrations;
	if (!migrations) {
		replyError(result, toDbusError(r3d::Error{ make_error_code(Errc::NotSupported), "no migrations here" }));
		return;
	}
	auto action = fmt::format("Pull {} to {}", source, export_listen.empty() ? "a device" : export_listen);
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return pullRequest(std::move(source), std::move(export_listen), options); },
		[migrations](const PullRequest &r) { return migrations->pull(r); }, kMigrationsPath);
}

std::vector<sdbus::ObjectPath> ManagerObject::ListMigrations()
{
	if (!state_.context.migrations)
		return {};
	return pathsOf(state_.context.migrations->list(), kMigrationsPath);
}

namespace {

template <class... Out>
bool syncsHere(SyncManager *syncs, const sdbus::Result<Out...> &result)
{
	if (syncs)
		return true;
	replyError(result, toDbusError(r3d::Error{ make_error_code(Errc::NotSupported), "no push sync here" }));
	return false;
}

} // namespace

void ManagerObject::StartSync(sdbus::Result<sdbus::ObjectPath> &&result, std::string source,
			      std::vector<std::string> destinations, std::map<std::string, sdbus::Variant> options)
{
	auto *syncs = state_.context.syncs;
	if (!syncsHere(syncs, result))
		return;
	auto action = fmt::format("StartSync {} to {} destinations", source, destinations.size());
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return syncStartRequest(std::move(source), std::move(destinations), options); },
		[syncs](const SyncStartRequest &r) { return syncs->start(r); }, kSyncsPath);
}

void ManagerObject::ServeSync(sdbus::Result<sdbus::ObjectPath> &&result, std::string listen, std::string dir,
			      std::map<std::string, sdbus::Variant> options)
{
	auto *syncs = state_.context.syncs;
	if (!syncsHere(syncs, result))
		return;
	auto action = fmt::format("ServeSync {} on {}", dir, listen);
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return syncServeRequest(std::move(listen), std::move(dir), options); },
		[syncs](const SyncServeRequest &r) { return syncs->serve(r); }, kSyncsPath);
}

void ManagerObject::StartSyncHub(sdbus::Result<sdbus::ObjectPath> &&result, std::string listen, std::string cache_dir,
				 std::vector<std::string> destinations, std::map<std::string, sdbus::Variant> options)
{
	auto *syncs = state_.context.syncs;
	if (!syncsHere(syncs, result))
		return;
	auto action = fmt::format("StartSyncHub {} on {} to {} destinations", cache_dir, listen, destinations.size());
	createObject(
		state_, getObject(), std::move(result), action,
		[&] { return syncHubRequest(std::move(listen), std::move(cache_dir), std::move(destinations), options); },
		[syncs](const SyncServeRequest &r) { return syncs->serve(r); }, kSyncsPath);
}

std::vector<sdbus::ObjectPath> ManagerObject::ListSyncs()
{
	if (!state_.context.syncs)
		return {};
	return pathsOf(state_.context.syncs->list(), kSyncsPath);
}

std::string ManagerObject::GetVersion()
{
	return state_.context.version;
}

void ManagerObject::SetLogLevel(const std::string &level)
{
	auto admitted = state_.admit(getObject(), fmt::format("SetLogLevel {}", level));
	if (!admitted)
		throw toDbusError(admitted.error());
	if (auto ok = state_.context.setLogLevel(level); !ok)
		throw toDbusError(ok.error());
	getObject().emitPropertiesChangedSignal(kInterface, { "LogLevel" });
}

std::string ManagerObject::Version()
{
	return state_.context.version;
}

std::string ManagerObject::LogLevel()
{
	return state_.context.logLevel();
}

} // namespace r3mapd::service
