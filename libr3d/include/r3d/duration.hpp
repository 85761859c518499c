#pragma once

#include <chrono>
#include <string_view>

#include <r3d/result.hpp>

namespace r3d {

/// Parses "250ms", "30s", "2m", "1h"; a bare number is seconds. Fails with a message
/// naming the problem: empty, not a number, unknown unit, too large.
ResultMsg<std::chrono::milliseconds> parseDuration(std::string_view text);

} // namespace r3d
