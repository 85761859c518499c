#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>

namespace r3mapd {

/// Mounts and exports are numbered "1", "2", ...; anything else is no id.
inline std::optional<uint64_t> parseObjectId(const std::string &id)
{
	uint64_t n = 0;
	auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), n);
	if (id.empty() || ec != std::errc() || end != id.data() + id.size())
		return std::nullopt;
	return n;
}

} // namespace r3mapd
