#include "service/export_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"
#include "service/request_options.hpp"
#include "service/statistics.hpp"

namespace r3mapd::service {

ExportObject::ExportObject(sdbus::IConnection &connection, ServiceState &state, ExportInfo info)
	: AdaptorInterfaces(connection, kExportsPath + info.id), state_(state), info_(std::move(info))
{
	std::vector<std::string> interfaces{ kInterface };
	if (info_.kind == r3d::mount::MountKind::Managed) {
		auto &exports = state_.context.exports;
		managed_ = std::make_unique<ManagedRegionObject>(
			connection, state_, kExportsPath + info_.id, "export " + info_.id, info_.managedOptions,
			[&exports, id = info_.id] { return exports.managedStatus(id); },
			[&exports, id = info_.id] { return exports.sync(id); });
		interfaces.push_back(ManagedRegionObject::kInterface);
	}
	registerAdaptor();
	emitInterfacesAddedSignal(interfaces);
}

ExportObject::~ExportObject()
{
	std::vector<std::string> interfaces{ kInterface };
	if (managed_)
		interfaces.push_back(ManagedRegionObject::kInterface);
	withdraw(*this, interfaces);
}

void ExportObject::refreshManaged()
{
	if (managed_)
		managed_->refresh();
}

void ExportObject::Stop(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("Stop export {}", info_.id)))
		return;
	runAsync(state_, std::move(result), [&exports = state_.context.exports, id = info_.id] { return exports.stop(id); });
}

void ExportObject::StopWithOptions(sdbus::Result<> &&result, std::map<std::string, sdbus::Variant> options)
{
	if (!admit(state_, getObject(), result, fmt::format("Stop export {}", info_.id)))
		return;
	auto parsed = stopOptions(options);
	if (!parsed) {
		replyError(result, toDbusError(parsed.error()));
		return;
	}
	runAsync(state_, std::move(result),
		 [&exports = state_.context.exports, id = info_.id, o = *parsed] { return exports.stop(id, o); });
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
