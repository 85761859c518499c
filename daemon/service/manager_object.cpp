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

void ManagerObject::Mount(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri,
			  std::map<std::string, sdbus::Variant> options)
{
	if (!admit(state_, getObject(), result, fmt::format("Mount {}", backend_uri)))
		return;
	auto request = mountRequest(std::move(backend_uri), options);
	if (!request) {
		replyError(result, toDbusError(request.error()));
		return;
	}
	runAsync(state_, std::move(result),
		 [this, request = std::move(*request)]() -> r3d::ResultMsg<sdbus::ObjectPath> {
			 auto info = state_.context.mounts.mount(request);
			 if (!info)
				 return r3d::unexpectedOf(info.error());
			 return sdbus::ObjectPath(kMountsPath + info->id);
		 });
}

std::vector<sdbus::ObjectPath> ManagerObject::ListMounts()
{
	std::vector<sdbus::ObjectPath> out;
	for (const auto &info : state_.context.mounts.list())
		out.emplace_back(kMountsPath + info.id);
	return out;
}

void ManagerObject::Export(sdbus::Result<sdbus::ObjectPath> &&result, std::string backend_uri, std::string listen,
			   std::map<std::string, sdbus::Variant> options)
{
	if (!admit(state_, getObject(), result, fmt::format("Export {} on {}", backend_uri, listen)))
		return;
	auto request = exportRequest(std::move(backend_uri), std::move(listen), options);
	if (!request) {
		replyError(result, toDbusError(request.error()));
		return;
	}
	runAsync(state_, std::move(result),
		 [this, request = std::move(*request)]() -> r3d::ResultMsg<sdbus::ObjectPath> {
			 auto info = state_.context.exports.start(request);
			 if (!info)
				 return r3d::unexpectedOf(info.error());
			 return sdbus::ObjectPath(kExportsPath + info->id);
		 });
}

std::vector<sdbus::ObjectPath> ManagerObject::ListExports()
{
	std::vector<sdbus::ObjectPath> out;
	for (const auto &info : state_.context.exports.list())
		out.emplace_back(kExportsPath + info.id);
	return out;
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
