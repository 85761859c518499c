#pragma once

#include <memory>
#include <mutex>

#include <sdbus-c++/sdbus-c++.h>

#include "mount1_adaptor.h"
#include "mount_manager.hpp"
#include "service/managed_region_object.hpp"
#include "service/service_state.hpp"

namespace r3mapd::service {

/// /org/r3map/mounts/ID: org.r3map.Mount1 over one entry of the MountManager, and
/// org.r3map.Managed1 for a managed mount.
class MountObject final
	: public sdbus::AdaptorInterfaces<org::r3map::Mount1_adaptor, sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Mount1_adaptor::INTERFACE_NAME;

	/// Publishes the object and announces it (InterfacesAdded).
	MountObject(sdbus::IConnection &connection, ServiceState &state, const MountInfo &info);
	/// Withdraws it (InterfacesRemoved).
	~MountObject();

	/// Takes a new snapshot; emits PropertiesChanged and, on a new state, StateChanged.
	void update(const MountInfo &info);
	/// A managed mount signals what changed in Managed1 (see ManagedRegionObject).
	void refreshManaged();

private:
	void OpenFd(sdbus::Result<sdbus::UnixFd> &&result, uint32_t flags) override;
	void Unmount(sdbus::Result<> &&result) override;
	void UnmountWithOptions(sdbus::Result<> &&result, std::map<std::string, sdbus::Variant> options) override;
	std::string Id() override;
	std::string Kind() override;
	std::string Device() override;
	std::string BackendUri() override;
	uint64_t Size() override;
	uint64_t ChunkSize() override;
	bool ReadOnly() override;
	std::string State() override;
	std::map<std::string, uint64_t> Statistics() override;

	MountInfo snapshot() const;

	ServiceState &state_;
	mutable std::mutex mutex_;
	MountInfo info_;
	/// Before this object's own adaptor: InterfacesAdded names both.
	std::unique_ptr<ManagedRegionObject> managed_;
};

} // namespace r3mapd::service
