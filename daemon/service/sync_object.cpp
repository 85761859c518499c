#include "service/sync_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"

namespace r3mapd::service {

SyncObject::SyncObject(sdbus::IConnection &connection, ServiceState &state, SyncInfo info)
	: AdaptorInterfaces(connection, kSyncsPath + info.id), state_(state), info_(std::move(info))
{
	registerAdaptor();
	emitInterfacesAddedSignal({ kInterface });
}

SyncObject::~SyncObject()
{
	withdraw(*this, { kInterface });
}

SyncStatus SyncObject::status() const
{
	// A sync being stopped answers with defaults until its object goes.
	return state_.context.syncs->status(info_.id).value_or(SyncStatus{});
}

std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, uint64_t, std::string, std::string>> SyncObject::Destinations()
{
	std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, uint64_t, std::string, std::string>> out;
	for (const auto &d : status().destinations)
		out.emplace_back(d.uri, d.ackedGeneration, d.lag, d.amount, d.state, d.error);
	return out;
}

void SyncObject::SyncNow(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("SyncNow sync {}", info_.id)))
		return;
	runAsync(state_, std::move(result), [syncs = state_.context.syncs, id = info_.id] { return syncs->syncNow(id); });
}

void SyncObject::Stop(sdbus::Result<> &&result)
{
	if (!admit(state_, getObject(), result, fmt::format("Stop sync {}", info_.id)))
		return;
	runAsync(state_, std::move(result), [syncs = state_.context.syncs, id = info_.id] { return syncs->stop(id); });
}

} // namespace r3mapd::service
