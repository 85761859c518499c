#pragma once

#include <map>
#include <string>

#include <sdbus-c++/Types.h>

#include <r3d/result.hpp>

#include "export_manager.hpp"
#include "migration_manager.hpp"
#include "mount_manager.hpp"
#include "sync_manager.hpp"

namespace r3mapd::service {

using OptionMap = std::map<std::string, sdbus::Variant>;

/// Manager1.Mount options → MountRequest. Unknown keys, wrong types and size 0 fail with
/// InvalidArgument naming the key. "managed" (b) and the managed options (the keys of
/// r3d::mount::managedOptionKeys(), parsed by setManagedOption()) make a managed request;
/// a managed option without managed true is InvalidArgument.
r3d::ResultMsg<MountRequest> mountRequest(std::string backendUri, const OptionMap &options);

/// Manager1.Export options → ExportRequest, with the same rules.
r3d::ResultMsg<ExportRequest> exportRequest(std::string backendUri, std::string listen, const OptionMap &options);

/// Mount1.UnmountWithOptions options: discard-dirty (b).
r3d::ResultMsg<UnmountOptions> unmountOptions(const OptionMap &options);

/// Export1.StopWithOptions options: discard-dirty (b).
r3d::ResultMsg<StopOptions> stopOptions(const OptionMap &options);

/// Manager1.Seed options: export_listen (s), id (s).
r3d::ResultMsg<SeedRequest> seedRequest(std::string backendUri, std::string listen, const OptionMap &options);

/// Manager1.Pull options: downtime (s or t us, > 0), max_rounds (u or t, 1..10000), rate
/// (size, > 0), finalize (auto or manual); anything else is InvalidArgument naming the key.
r3d::ResultMsg<PullRequest> pullRequest(std::string source, std::string exportListen, const OptionMap &options);

/// Manager1.StartSync options: interval (s or t ms, 100ms to 1 day), hub (s), chunk_size
/// (size); anything else is InvalidArgument naming the key.
r3d::ResultMsg<SyncStartRequest> syncStartRequest(std::string source, std::vector<std::string> destinations,
						  const OptionMap &options);

/// Manager1.ServeSync options: apply (journal or rename), verify (b), tls_cert, tls_key,
/// tls_ca, token_file (s).
r3d::ResultMsg<SyncServeRequest> syncServeRequest(std::string listen, std::string dir, const OptionMap &options);

/// Manager1.StartSyncHub options: tls_cert, tls_key, tls_ca, token_file (s).
r3d::ResultMsg<SyncServeRequest> syncHubRequest(std::string listen, std::string cacheDir,
						std::vector<std::string> destinations, const OptionMap &options);

} // namespace r3mapd::service
