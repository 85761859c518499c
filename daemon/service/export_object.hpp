#pragma once

#include <memory>

#include <sdbus-c++/sdbus-c++.h>

#include "export1_adaptor.h"
#include "export_manager.hpp"
#include "service/managed_region_object.hpp"
#include "service/service_state.hpp"

namespace r3mapd::service {

/// /org/r3map/exports/ID: org.r3map.Export1 over one entry of the ExportManager, and
/// org.r3map.Managed1 for a managed export.
class ExportObject final
	: public sdbus::AdaptorInterfaces<org::r3map::Export1_adaptor, sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Export1_adaptor::INTERFACE_NAME;

	ExportObject(sdbus::IConnection &connection, ServiceState &state, ExportInfo info);
	~ExportObject();

	/// A managed export signals what changed in Managed1 (see ManagedRegionObject).
	void refreshManaged();

private:
	void Stop(sdbus::Result<> &&result) override;
	void StopWithOptions(sdbus::Result<> &&result, std::map<std::string, sdbus::Variant> options) override;
	std::string Id() override { return info_.id; }
	std::string Kind() override { return r3d::mount::kindName(info_.kind); }
	std::string BackendUri() override { return info_.backendUri; }
	std::string Listen() override { return info_.listen; }
	std::string ExportName() override { return info_.name; }
	uint64_t Size() override { return info_.size; }
	bool ReadOnly() override { return info_.readOnly; }
	std::string Protocol() override { return info_.protocol; }
	uint32_t ConnectedClients() override;
	std::map<std::string, uint64_t> Statistics() override;

	ServiceState &state_;
	const ExportInfo info_; ///< an export never changes; only its counters move
	/// Before this object's own adaptor: InterfacesAdded names both.
	std::unique_ptr<ManagedRegionObject> managed_;
};

} // namespace r3mapd::service
