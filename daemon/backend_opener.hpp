#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <sys/types.h>

#include <r3d/backend_factory.hpp>
#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

namespace r3d {
class Runtime;
}

namespace r3mapd {

struct Config;

/// Opens a backend for a mount or an export under the configuration's rules, on behalf of
/// the caller `callerUid`. The daemon runs as root: a caller other than root may use only
/// unprivileged_schemes and no URI parameter that names a local file (Errc::NotPermitted),
/// or it could read and write any file through the daemon. file: and dir: paths must be
/// absolute, whoever asks.
/// `size`, when given, is the size the caller wants: it is passed as size= to file, dir,
/// redis and s3 URIs that give none, and must otherwise equal the backend's size. Errors: BadUri (the URI itself),
/// SchemeNotAllowed, NotPermitted, InvalidArgument (relative path, size mismatch),
/// BackendFailed (open failed). `defaults` go to openBackend().
r3d::ResultMsg<std::shared_ptr<r3d::ReadWriterAt>> openAllowedBackend(const Config &config, const std::string &uri,
								      std::optional<uint64_t> size, uid_t callerUid,
								      r3d::Runtime *runtime = nullptr,
								      const r3d::OpenDefaults &defaults = {});

/// Whether a backend URI parameter names a local file (token-file, tls-ca, ...).
bool namesLocalFile(const std::string &param);

/// The backend schemes this build knows (r3d::knownSchemes()).
std::set<std::string> knownSchemeSet();

} // namespace r3mapd
