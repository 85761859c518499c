#include "mount/managed_options.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include <r3d/duration.hpp>
#include <r3d/size.hpp>

#include "base/limits.hpp"

namespace r3d::mount {
namespace {

ResultMsg<uint64_t> number(std::string_view key, std::string_view value, uint64_t min, uint64_t max)
{
	uint64_t v = 0;
	auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
	if (ec != std::errc() || p != value.data() + value.size() || v < min || v > max)
		return fail(EINVAL, fmt::format("{}: '{}' is not a number from {} to {}", key, value, min, max));
	return v;
}

ResultMsg<bool> boolean(std::string_view key, std::string_view value)
{
	if (value == "true" || value == "yes" || value == "on" || value == "1")
		return true;
	if (value == "false" || value == "no" || value == "off" || value == "0")
		return false;
	return fail(EINVAL, fmt::format("{}: '{}' is not true or false", key, value));
}

} // namespace

const std::vector<std::string> &managedOptionKeys()
{
	static const std::vector<std::string> keys = { "cache",	    "chunk-size", "pull-workers", "push-interval",
						       "order",	    "pull-first", "pull-rate",	  "push-rate",
						       "remote-timeout", "background", "discard-local" };
	return keys;
}

ResultMsg<void> setManagedOption(ManagedOptions &o, std::string_view key, std::string_view value)
{
	auto withKey = [&](const Error &e) { return fail(e.code, fmt::format("{}: {}", key, e.message)); };
	if (key == "cache") {
		if (value.size() > 1024)
			return fail(ENAMETOOLONG, "cache: the path is too long");
		o.cache = std::string(value);
	} else if (key == "chunk-size") {
		auto v = parseSize(value);
		if (!v)
			return withKey(v.error());
		if (*v < limits::kMinChunk || *v > limits::kMaxChunk || (*v & (*v - 1)) != 0)
			return fail(EINVAL, fmt::format("chunk-size: {} is not a power of two from {} to {}", *v,
							formatSize(limits::kMinChunk), formatSize(limits::kMaxChunk)));
		o.chunk = *v;
	} else if (key == "pull-workers") {
		auto v = number(key, value, 1, 256);
		if (!v)
			return unexpectedOf(v.error());
		o.pullWorkers = static_cast<unsigned>(*v);
	} else if (key == "push-interval" || key == "remote-timeout") {
		auto v = parseDuration(value);
		if (!v)
			return withKey(v.error());
		if (*v < std::chrono::milliseconds(10) || *v > std::chrono::hours(24))
			return fail(EINVAL, fmt::format("{}: {} is outside 10ms..24h", key, value));
		(key == "push-interval" ? o.pushInterval : o.remoteTimeout) = *v;
	} else if (key == "order") {
		if (value == "linear") {
			o.order = stages::PullOrder::Linear;
		} else if (value == "reverse") {
			o.order = stages::PullOrder::Reverse;
		} else if (value.substr(0, 4) == "hot:" && value.size() > 4) {
			o.order = stages::PullOrder::Hot;
			o.hotFile = std::string(value.substr(4));
		} else {
			return fail(EINVAL, fmt::format("order: '{}' is not linear, reverse or hot:FILE", value));
		}
	} else if (key == "pull-first") {
		if (!value.empty() && value.back() == '%') {
			auto v = number(key, value.substr(0, value.size() - 1), 0, 100);
			if (!v)
				return unexpectedOf(v.error());
			o.pullFirstPercent = static_cast<unsigned>(*v);
			o.pullFirstBytes = 0;
		} else {
			auto v = parseSize(value);
			if (!v)
				return withKey(v.error());
			o.pullFirstBytes = *v;
			o.pullFirstPercent = 0;
		}
	} else if (key == "pull-rate" || key == "push-rate") {
		auto v = parseSize(value);
		if (!v)
			return withKey(v.error());
		(key == "pull-rate" ? o.pullRate : o.pushRate) = *v;
	} else if (key == "background" || key == "discard-local") {
		auto v = boolean(key, value);
		if (!v)
			return unexpectedOf(v.error());
		(key == "background" ? o.background : o.discardLocal) = *v;
	} else {
		return fail(EINVAL, fmt::format("unknown managed option '{}'", key));
	}
	return {};
}

ResultMsg<std::vector<std::pair<uint64_t, uint64_t>>> readHotList(const std::string &path, uint64_t chunk,
								   uint64_t size)
{
	std::ifstream in(path);
	if (!in)
		return fail(ENOENT, fmt::format("hot list {}: cannot open", path));
	std::vector<std::pair<uint64_t, uint64_t>> ranges;
	std::string line;
	for (unsigned n = 1; std::getline(in, line); ++n) {
		if (line.empty() || line[0] == '#')
			continue;
		if (ranges.size() >= 1u << 20)
			return fail(E2BIG, fmt::format("hot list {}: more than {} ranges", path, 1u << 20));
		std::istringstream fields(line);
		std::string a, b;
		fields >> a >> b;
		auto start = parseSize(a), length = parseSize(b);
		if (!start || !length || *length == 0 || *start >= size)
			return fail(EINVAL, fmt::format("hot list {} line {}: want \"START LENGTH\" inside the region", path, n));
		uint64_t end = std::min(size, *start + *length);
		ranges.emplace_back(*start / chunk, (end - 1) / chunk);
	}
	return ranges;
}

} // namespace r3d::mount
