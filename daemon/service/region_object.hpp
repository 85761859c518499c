#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include "region1_adaptor.h"
#include "region_manager.hpp"
#include "service/service_state.hpp"

namespace r3mapd::service {

inline constexpr const char *kRegionsPath = "/org/r3map/regions/";

/// /org/r3map/regions/ID: org.r3map.Region1 over one region of the RegionManager.
class RegionObject final
	: public sdbus::AdaptorInterfaces<org::r3map::Region1_adaptor, sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Region1_adaptor::INTERFACE_NAME;

	RegionObject(sdbus::IConnection &connection, ServiceState &state, RegionInfo info);
	~RegionObject();

private:
	void Sync(sdbus::Result<> &&result) override;
	void Unmap(sdbus::Result<> &&result) override;
	std::string Id() override { return info_.id; }
	std::string Backend() override { return info_.backendUri; }
	uint64_t Size() override { return info_.size; }
	uint32_t OwnerUid() override { return static_cast<uint32_t>(info_.ownerUid); }
	uint32_t Pid() override { return static_cast<uint32_t>(info_.pid); }
	uint64_t FaultsServed() override;
	uint64_t BytesServed() override;
	uint64_t DirtyBytes() override;
	std::string TrackingMode() override { return info_.trackingMode; }

	ServiceState &state_;
	const RegionInfo info_;
};

} // namespace r3mapd::service
