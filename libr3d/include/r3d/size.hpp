#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <r3d/result.hpp>

namespace r3d {

/// Parses "4096", "64K", "256M", "1G", "2T" (binary multiples; "KiB"/"MB" spellings too).
/// Fails with a message naming the problem: empty, not a number, unknown suffix, overflow.
ResultMsg<uint64_t> parseSize(std::string_view text);

/// "256 MiB", "1.5 GiB", "4096 B": for messages and tables.
std::string formatSize(uint64_t bytes);

} // namespace r3d
