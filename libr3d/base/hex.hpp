#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace r3d {

/// The value of one hex digit, or -1 when `c` is not one.
int hexValue(char c);

/// Lower-case hex of `bytes`.
std::string toHex(std::span<const unsigned char> bytes);

/// `bytes` random bytes as hex; ids that must not collide across processes.
std::string randomHexId(size_t bytes = 8);

} // namespace r3d
