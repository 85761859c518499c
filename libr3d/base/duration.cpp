#include <r3d/duration.hpp>

#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace r3d {

ResultMsg<std::chrono::milliseconds> parseDuration(std::string_view text)
{
	if (text.empty())
		return fail(EINVAL, "duration is empty");
	size_t i = 0;
	uint64_t value = 0;
	// A day in milliseconds times this still fits: keeps the multiplication below exact.
	constexpr uint64_t kMaxValue = uint64_t{ 1 } << 32;
	while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
		value = value * 10 + static_cast<uint64_t>(text[i] - '0');
		if (value > kMaxValue)
			return fail(ERANGE, fmt::format("duration '{}' is too long", text));
		++i;
	}
	if (i == 0)
		return fail(EINVAL, fmt::format("duration '{}' does not start with a number", text));
	std::string_view unit = text.substr(i);
	uint64_t scale;
	if (unit == "ms")
		scale = 1;
	else if (unit.empty() || unit == "s")
		scale = 1000;
	else if (unit == "m" || unit == "min")
		scale = 60 * 1000;
	else if (unit == "h")
		scale = 3600 * 1000;
	else
		return fail(EINVAL, fmt::format("duration '{}' has an unknown unit '{}' (use ms, s, m or h)", text, unit));
	return std::chrono::milliseconds(static_cast<int64_t>(value * scale));
}

} // namespace r3d
