#pragma once

#include <sdbus-c++/Error.h>

#include <r3d/result.hpp>

namespace r3mapd::service {

inline constexpr const char *kErrorPrefix = "org.r3map.Error.";

/// org.r3map.Error.<Name> with the message, for any error the daemon produces.
sdbus::Error toDbusError(const r3d::Error &error);

} // namespace r3mapd::service
