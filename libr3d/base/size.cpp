#include <r3d/size.hpp>

#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace r3d {

ResultMsg<uint64_t> parseSize(std::string_view text)
{
	if (text.empty())
		return fail(EINVAL, "size is empty");
	size_t i = 0;
	uint64_t value = 0;
	constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
	while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
		uint64_t digit = static_cast<uint64_t>(text[i] - '0');
		if (value > (kMax - digit) / 10)
			return fail(ERANGE, fmt::format("size '{}' does not fit in 64 bits", text));
		value = value * 10 + digit;
		++i;
	}
	if (i == 0)
		return fail(EINVAL, fmt::format("size '{}' does not start with a number", text));

	std::string suffix;
	for (; i < text.size(); ++i)
		suffix += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
	unsigned shift = 0;
	if (suffix.empty() || suffix == "B")
		shift = 0;
	else if (suffix == "K" || suffix == "KB" || suffix == "KIB")
		shift = 10;
	else if (suffix == "M" || suffix == "MB" || suffix == "MIB")
		shift = 20;
	else if (suffix == "G" || suffix == "GB" || suffix == "GIB")
		shift = 30;
	else if (suffix == "T" || suffix == "TB" || suffix == "TIB")
		shift = 40;
	else if (suffix == "P" || suffix == "PB" || suffix == "PIB")
		shift = 50;
	else
		return fail(EINVAL, fmt::format("size '{}' has an unknown suffix '{}' (use K, M, G, T or P)", text,
						text.substr(text.size() - suffix.size())));
	if (shift > 0 && value > (kMax >> shift))
		return fail(ERANGE, fmt::format("size '{}' does not fit in 64 bits", text));
	return value << shift;
}

std::string formatSize(uint64_t bytes)
{
	static constexpr const char *kUnits[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned unit = 0;
	double v = static_cast<double>(bytes);
	while (v >= 1024.0 && unit < 6) {
		v /= 1024.0;
		++unit;
	}
	if (unit == 0)
		return fmt::format("{} B", bytes);
	if (bytes % (uint64_t{ 1 } << (10 * unit)) == 0)
		return fmt::format("{} {}", bytes >> (10 * unit), kUnits[unit]);
	return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

} // namespace r3d
