#include "service/export_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"
#include "service/statistics.hpp"

namespace r3mapd::service {

ExportObject::ExportObject(sdbus::IConnection &connection, ServiceState &state, ExportInfo info)
	: AdaptorInterfaces(connection, kExportsPath + info.id), state_(state), info_(std::move(info))
{
	registerAdaptor();
	emitInterfacesAddedSignal({ kInterface });
}

ExportObject::~ExportObject()
{
	withdraw(*this);
}

void ExportObject::Stop(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("Stop export {}", info_.id)))
		return;
	runAsync(state_, std::move(result), [&exports = state_.context.exports, id = info_.id] { return exports.stop(id); });
}

uint32_t ExportObject::ConnectedClients()
{
	return static_cast<uint32_t>(state_.context.exports.activeConnections(info_.id));
}

std::map<std::string, uint64_t> ExportObject::Statistics()
{
	return statisticsMap(state_.context.exports.counters(info_.id).value_or(r3d::Counters{}));
}

} // namespace r3mapd::service
