#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

namespace r3mapd {

struct Config;

/// Opens a backend for a mount or an export under the configuration's rules.
/// `size`, when given, is the size the caller wants: it is passed to file and dir URIs that
/// name none, and must otherwise equal the backend's size. Errors: BadUri (the URI itself),
/// SchemeNotAllowed, InvalidArgument (size mismatch), BackendFailed (open failed).
r3d::ResultMsg<std::shared_ptr<r3d::ReadWriterAt>> openAllowedBackend(const Config &config, const std::string &uri,
								      std::optional<uint64_t> size);

/// The backend schemes this build knows (r3d::knownSchemes()).
std::set<std::string> knownSchemeSet();

} // namespace r3mapd
