#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <sys/types.h>

#include <r3d/result.hpp>

#include "managed_request.hpp"
#include "mount/managed_region.hpp"

namespace r3d {
class Runtime;
}

namespace r3mapd {

struct Config;

/// Where a managed cache lives, under the daemon's rules: "" or "memory" stay in memory
/// (returned as ""); a NAME (letters, digits, '.', '-', '_') is STATE_DIR/caches/NAME,
/// for any admitted caller; an absolute path only for root, since the daemon would
/// create and write it as root. InvalidArgument for anything else, or a NAME without a
/// state directory; NotPermitted for an absolute path from someone else.
r3d::ResultMsg<std::string> resolveCacheDir(const std::string &cache, const std::string &stateDir, uid_t callerUid);

/// Opens the managed region of a Mount or Export: the cache rules above (and the cache
/// directory checked writable, InvalidArgument), a hot list only from root (an absolute
/// path), the remote through openAllowedBackend(), then the region. Errors of the region
/// itself: Busy (the cache is used by another mount), BackendFailed (the remote failed,
/// or does not hold what the cache pulled from it), InvalidArgument, Failed.
r3d::ResultMsg<std::shared_ptr<r3d::mount::ManagedRegion>>
openManagedRegion(const Config &config, const std::string &stateDir, const std::string &remoteUri,
		  std::optional<uint64_t> size, const ManagedRequest &request, uid_t callerUid,
		  r3d::Runtime *runtime);

} // namespace r3mapd
