#pragma once

#include <string>

#include <r3d/result.hpp>

#include "mount/managed_region.hpp"
#include "push_progress.hpp"

namespace r3mapd {

/// Sync() of a managed mount or export: pushes everything dirty in `region` and returns
/// once the remote has it, its progress counted in `pushed`. Logs to the `kind` logger
/// ("mount", "export") as "KIND ID: …". BackendFailed when the push fails.
r3d::ResultMsg<void> syncManaged(r3d::mount::ManagedRegion &region, PushProgress &pushed, const std::string &kind,
				 const std::string &id);

} // namespace r3mapd
