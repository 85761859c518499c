#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "context.hpp"

namespace r3ctl {

// The long calls of managed mounts and exports, with progress (see ProgressReport) read by
// polling Managed1 properties on ctx.client() while the call runs on ctx.longClient().

/// Runs `call` (Sync, Unmount, Stop) in a thread of its own on ctx.longClient() and
/// reports the push: bytes pushed since the start against what is dirty. Returns when
/// the call does; rethrows its sdbus::Error.
void runPushing(Context &ctx, const std::string &operation, const std::string &id, const std::string &path,
		const std::function<void(Client &client)> &call);

/// Until the managed object at `path` has all `size` bytes local (--wait-local), bounded
/// by --timeout when given. Throws sdbus::Error when the object goes away or time is up.
void waitLocal(Context &ctx, const std::string &id, const std::string &path, uint64_t size);

} // namespace r3ctl
