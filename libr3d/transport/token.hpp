#pragma once

#include <string>
#include <string_view>

#include <r3d/result.hpp>

namespace r3d::transport {

/// Reads a shared-secret token file: its first line without surrounding white space.
/// Fails when the file cannot be read or the token is empty. Warns when the file can be
/// read by other users.
ResultMsg<std::string> readTokenFile(const std::string &path);

/// Compares in time independent of where the tokens differ.
bool tokensEqual(std::string_view a, std::string_view b);

} // namespace r3d::transport
