#include "service/region_object.hpp"

#include <fmt/format.h>

#include "service/async_call.hpp"

namespace r3mapd::service {

RegionObject::RegionObject(sdbus::IConnection &connection, ServiceState &state, RegionInfo info)
	: AdaptorInterfaces(connection, kRegionsPath + info.id), state_(state), info_(std::move(info))
{
	registerAdaptor();
	emitInterfacesAddedSignal({ kInterface });
}

RegionObject::~RegionObject()
{
	withdraw(*this, { kInterface });
}

void RegionObject::Sync(sdbus::Result<> &&result)
{
	auto caller = admit(state_, getObject(), result, fmt::format("Sync region {}", info_.id));
	if (!caller)
		return;
	runAsync(state_, std::move(result), [&regions = *state_.context.regions, id = info_.id, c = *caller] {
		return regions.sync(id, c);
	});
}

void RegionObject::Unmap(sdbus::Result<> &&result)
{
	auto caller = admit(state_, getObject(), result, fmt::format("Unmap region {}", info_.id));
	if (!caller)
		return;
	runAsync(state_, std::move(result), [&regions = *state_.context.regions, id = info_.id, c = *caller] {
		return regions.unmap(id, c);
	});
}

uint64_t RegionObject::FaultsServed()
{
	auto s = state_.context.regions->stats(info_.id);
	return s ? s->faults : 0;
}

uint64_t RegionObject::DirtyBytes()
{
	auto s = state_.context.regions->stats(info_.id);
	return s ? s->dirtyBytes : 0;
}

uint64_t RegionObject::BytesServed()
{
	auto s = state_.context.regions->stats(info_.id);
	return s ? s->pulledBytes : 0;
}

} // namespace r3mapd::service
