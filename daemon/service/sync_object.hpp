#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include "service/service_state.hpp"
#include "sync1_adaptor.h"
#include "sync_manager.hpp"

namespace r3mapd::service {

/// /org/r3map/syncs/ID: org.r3map.Sync1 over one entry of the SyncManager. The progress
/// properties are read from it when asked.
class SyncObject final
	: public sdbus::AdaptorInterfaces<org::r3map::Sync1_adaptor, sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Sync1_adaptor::INTERFACE_NAME;

	SyncObject(sdbus::IConnection &connection, ServiceState &state, SyncInfo info);
	~SyncObject();

private:
	void SyncNow(sdbus::Result<> &&result) override;
	void Stop(sdbus::Result<> &&result) override;
	std::string Id() override { return info_.id; }
	std::string Role() override { return info_.role; }
	std::string Source() override { return info_.source; }
	std::string Listen() override { return info_.listen; }
	uint64_t IntervalMs() override { return static_cast<uint64_t>(info_.interval.count()); }
	std::string State() override { return status().state; }
	uint64_t LastSync() override { return status().lastSync; }
	uint64_t Rounds() override { return status().rounds; }
	uint64_t Generation() override { return status().generation; }
	uint64_t BytesSent() override { return status().bytesSent; }
	uint64_t ChunksChanged() override { return status().chunksChanged; }
	uint64_t SourceBytes() override { return status().sourceBytes; }
	std::vector<sdbus::Struct<std::string, uint64_t, uint64_t, uint64_t, std::string, std::string>>
	Destinations() override;
	std::string LastError() override { return status().lastError; }

	SyncStatus status() const;

	ServiceState &state_;
	const SyncInfo info_;
};

} // namespace r3mapd::service
