#include "config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/common.h>

#include <r3d/backend_factory.hpp>
#include <r3d/size.hpp>

#include "backend_opener.hpp"

namespace r3mapd {

namespace {

using nlohmann::json;

constexpr const char *kKeys[] = { "default_chunk_size", "max_request_size", "allowed_schemes",
				  "unprivileged_schemes", "log_level", "access_group", "state_dir",
				  "bus_check_seconds", "region_socket" };

std::string keyList()
{
	std::string out;
	for (const char *k : kKeys)
		out += (out.empty() ? "" : ", ") + std::string(k);
	return out;
}

// A size given as a number of bytes or a string such as "64K".
r3d::ResultMsg<uint64_t> sizeValue(const json &v, const std::string &where)
{
	if (v.is_number_unsigned())
		return v.get<uint64_t>();
	if (v.is_string()) {
		auto parsed = r3d::parseSize(v.get<std::string>());
		if (!parsed)
			return r3d::fail(EINVAL, fmt::format("{}: {}", where, parsed.error().message));
		return *parsed;
	}
	return r3d::fail(EINVAL, fmt::format("{}: expected a size in bytes or a string such as \"64K\", got {}", where,
					     v.dump()));
}

r3d::ResultMsg<uint64_t> sizeInRange(const json &v, const std::string &where, uint64_t lo, uint64_t hi)
{
	auto size = sizeValue(v, where);
	if (!size)
		return size;
	if (*size < lo || *size > hi)
		return r3d::fail(ERANGE, fmt::format("{}: {} is outside {} .. {}", where, r3d::formatSize(*size),
						     r3d::formatSize(lo), r3d::formatSize(hi)));
	return size;
}

// An array of scheme names this build knows.
r3d::ResultMsg<std::set<std::string>> schemeSet(const json &v, const std::string &where)
{
	if (!v.is_array())
		return r3d::fail(EINVAL, fmt::format("{}: expected an array of scheme names, got {}", where, v.dump()));
	auto known = knownSchemeSet();
	std::set<std::string> out;
	for (const auto &item : v) {
		if (!item.is_string())
			return r3d::fail(EINVAL, fmt::format("{}: {} is not a string", where, item.dump()));
		auto scheme = item.get<std::string>();
		if (!known.count(scheme))
			return r3d::fail(EINVAL, fmt::format("{}: unknown scheme '{}' (known: {})", where, scheme,
							     r3d::knownSchemes()));
		out.insert(scheme);
	}
	return out;
}

r3d::ResultMsg<void> apply(Config &c, const std::string &key, const json &v, const std::string &where)
{
	if (key == "default_chunk_size") {
		auto size = sizeValue(v, where);
		if (!size)
			return r3d::unexpectedOf(size.error());
		if (auto ok = checkChunkSize(*size); !ok)
			return r3d::fail(ok.error().code, fmt::format("{}: {}", where, ok.error().message));
		c.defaultChunkSize = *size;
	} else if (key == "max_request_size") {
		auto size = sizeInRange(v, where, Config::kMinRequestSize, Config::kMaxRequestSize);
		if (!size)
			return r3d::unexpectedOf(size.error());
		c.maxRequestSize = *size;
	} else if (key == "allowed_schemes") {
		auto schemes = schemeSet(v, where);
		if (!schemes)
			return r3d::unexpectedOf(schemes.error());
		if (schemes->empty())
			return r3d::fail(EINVAL, fmt::format("{}: is empty; leave the key out to allow every scheme", where));
		c.allowedSchemes = std::move(*schemes);
	} else if (key == "unprivileged_schemes") {
		// Empty is meaningful here: only root may mount or export anything.
		auto schemes = schemeSet(v, where);
		if (!schemes)
			return r3d::unexpectedOf(schemes.error());
		c.unprivilegedSchemes = std::move(*schemes);
	} else if (key == "log_level") {
		if (!v.is_string() || !isLogLevel(v.get<std::string>()))
			return r3d::fail(EINVAL, fmt::format("{}: {} is not one of trace, debug, info, warning, error, "
							     "critical, off",
							     where, v.dump()));
		c.logLevel = v.get<std::string>();
	} else if (key == "access_group") {
		if (v.is_number_unsigned())
			c.accessGroup = std::to_string(v.get<uint64_t>());
		else if (v.is_string() && !v.get<std::string>().empty())
			c.accessGroup = v.get<std::string>();
		else
			return r3d::fail(EINVAL, fmt::format("{}: expected a group name or number, got {}", where, v.dump()));
	} else if (key == "state_dir") {
		if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().front() != '/')
			return r3d::fail(EINVAL, fmt::format("{}: expected an absolute path, got {}", where, v.dump()));
		c.stateDir = v.get<std::string>();
	} else if (key == "bus_check_seconds") {
		if (!v.is_number_unsigned() || v.get<uint64_t>() > 3600)
			return r3d::fail(EINVAL, fmt::format("{}: expected seconds from 0 (off) to 3600, got {}", where, v.dump()));
		c.busCheckSeconds = v.get<uint64_t>();
	} else if (key == "region_socket") {
		if (!v.is_string() || (!v.get<std::string>().empty() && v.get<std::string>().front() != '/'))
			return r3d::fail(EINVAL, fmt::format("{}: expected an absolute path or \"\", got {}", where, v.dump()));
		c.regionSocket = v.get<std::string>();
	} else {
		return r3d::fail(EINVAL, fmt::format("{}: unknown key (known: {})", where, keyList()));
	}
	return {};
}

} // namespace

r3d::ResultMsg<void> checkChunkSize(uint64_t bytes)
{
	bool powerOfTwo = bytes != 0 && (bytes & (bytes - 1)) == 0;
	if (!powerOfTwo || bytes < Config::kMinChunkSize || bytes > Config::kMaxChunkSize)
		return r3d::fail(EINVAL, fmt::format("chunk size {} is not a power of two from {} to {}", bytes,
						     r3d::formatSize(Config::kMinChunkSize),
						     r3d::formatSize(Config::kMaxChunkSize)));
	return {};
}

bool isLogLevel(const std::string &name)
{
	// from_str maps unknown names to "off".
	return name == "off" || spdlog::level::from_str(name) != spdlog::level::off;
}

r3d::ResultMsg<Config> Config::parse(const std::string &text, const std::string &source)
{
	json doc;
	try {
		doc = json::parse(text);
	} catch (const json::parse_error &e) {
		return r3d::fail(EINVAL, fmt::format("{}: not valid JSON: {}", source, e.what()));
	}
	if (!doc.is_object())
		return r3d::fail(EINVAL, fmt::format("{}: expected a JSON object at the top level", source));
	Config c;
	for (const auto &[key, value] : doc.items()) {
		auto ok = apply(c, key, value, fmt::format("{}: key '{}'", source, key));
		if (!ok)
			return r3d::unexpectedOf(ok.error());
	}
	return c;
}

r3d::ResultMsg<Config> Config::load(const std::string &path, bool mustExist)
{
	std::ifstream in(path);
	if (!in) {
		int err = errno;
		if (err == ENOENT && !mustExist)
			return Config{};
		return r3d::fail(err, fmt::format("{}: cannot read: {}", path, std::strerror(err)));
	}
	std::stringstream text;
	text << in.rdbuf();
	return parse(text.str(), path);
}

bool Config::schemeAllowed(const std::string &scheme) const
{
	return allowedSchemes.empty() || allowedSchemes.count(scheme) > 0;
}

bool Config::schemeUnprivileged(const std::string &scheme) const
{
	return unprivilegedSchemes.count(scheme) > 0;
}

} // namespace r3mapd
