#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include "migration1_adaptor.h"
#include "migration_manager.hpp"
#include "service/service_state.hpp"

namespace r3mapd::service {

/// /org/r3map/migrations/ID: org.r3map.Migration1 over one entry of the MigrationManager.
/// The progress properties are read from the seeder or leecher when asked.
class MigrationObject final
	: public sdbus::AdaptorInterfaces<org::r3map::Migration1_adaptor, sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Migration1_adaptor::INTERFACE_NAME;

	MigrationObject(sdbus::IConnection &connection, ServiceState &state, MigrationInfo info);
	~MigrationObject();

	void phaseChanged(const std::string &phase) { emitPhaseChanged(phase); }
	void finalizeRequested() { emitFinalizeRequested(); }
	void finalizeAborted(const std::string &reason) { emitFinalizeAborted(reason); }

private:
	void Finalize(sdbus::Result<> &&result) override;
	void Cancel(sdbus::Result<> &&result) override;
	void AnswerFinalize(sdbus::Result<> &&result, bool proceed, std::string reason) override;
	std::string Id() override { return info_.id; }
	std::string Role() override { return info_.role; }
	std::string Source() override { return info_.source; }
	std::string Listen() override { return info_.listen; }
	std::string MigrationId() override { return info_.migrationId; }
	std::string ExportAddress() override { return info_.exportAddress; }
	std::string Device() override { return info_.device; }
	std::string Phase() override;
	uint64_t Round() override { return progress().round; }
	uint64_t RegionBytes() override { return progress().regionBytes; }
	uint64_t TransferredBytes() override { return progress().transferredBytes; }
	uint64_t DirtyBytes() override { return progress().dirtyBytes; }
	int64_t PredictedDowntimeUs() override;
	uint64_t MeasuredDowntimeUs() override;
	uint64_t Bandwidth() override { return static_cast<uint64_t>(progress().bandwidth); }
	uint64_t DirtyRate() override { return static_cast<uint64_t>(progress().dirtyRate); }
	bool Owner() override { return progress().owner; }
	std::string LastError() override { return progress().failure; }

	r3d::migration::MigrationProgress progress() const;

	ServiceState &state_;
	const MigrationInfo info_;
};

} // namespace r3mapd::service
