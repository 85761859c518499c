#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <sdbus-c++/sdbus-c++.h>

#include <r3d/result.hpp>

#include "managed1_adaptor.h"
#include "mount/managed_region.hpp"
#include "service/service_state.hpp"

namespace r3mapd::service {

/// org.r3map.Managed1 next to Mount1 or Export1 of a managed mount or export, at the same
/// path. A second sdbus object there, since only managed objects implement it; the owner
/// announces both interfaces together. Holds no reference to the region: `status` and
/// `sync` go through the manager by id, so the region may go away first.
class ManagedRegionObject final
	: public sdbus::AdaptorInterfaces<org::r3map::Managed1_adaptor, sdbus::Properties_adaptor>
{
public:
	static constexpr const char *kInterface = org::r3map::Managed1_adaptor::INTERFACE_NAME;

	using StatusFn = std::function<std::optional<r3d::mount::ManagedStatus>()>;
	/// Runs on a worker of the WorkQueue; blocks until the push is done.
	using SyncFn = std::function<r3d::ResultMsg<void>()>;

	/// `what` names the owner in logs ("mount 3"); `options` are the managed options as given.
	ManagedRegionObject(sdbus::IConnection &connection, ServiceState &state, std::string path, std::string what,
			    std::map<std::string, std::string> options, StatusFn statusFn, SyncFn syncFn);
	~ManagedRegionObject();

	/// Emits one PropertiesChanged naming the properties whose value changed since the
	/// last call; nothing when none did. Called once a second, so that is the bound.
	void refresh();

private:
	void Sync(sdbus::Result<> &&result) override;
	std::string State() override;
	uint64_t LocalBytes() override { return status().localBytes; }
	uint64_t DirtyBytes() override { return status().dirtyBytes; }
	uint64_t PulledBytes() override { return status().pulledBytes; }
	uint64_t PushedBytes() override { return status().pushedBytes; }
	uint64_t PullRate() override { return status().pullRate; }
	uint64_t PushRate() override { return status().pushRate; }
	std::string LastError() override { return status().lastError; }
	std::string CacheDir() override { return status().cache; }
	bool Resumed() override { return status().resumed; }
	std::map<std::string, std::string> Options() override { return options_; }

	/// Zeros while the region is not open (attaching, or its restore failed).
	r3d::mount::ManagedStatus status() const;

	ServiceState &state_;
	const std::string what_;
	const std::map<std::string, std::string> options_;
	const StatusFn status_;
	const SyncFn sync_;
	std::mutex mutex_;
	std::optional<r3d::mount::ManagedStatus> signalled_; ///< what refresh() last compared
};

} // namespace r3mapd::service
