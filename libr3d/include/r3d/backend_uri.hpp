#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <r3d/result.hpp>

namespace r3d {

/// A parsed backend URI: `scheme:path?k=v&k2=v2` or `scheme://authority/path?...`.
struct BackendUri {
	std::string text;      ///< the URI as given, for messages
	std::string scheme;    ///< "memory", "file", "dir", ...
	std::string authority; ///< host:port after "//", if any
	std::string path;      ///< percent-decoded
	std::map<std::string, std::string> params;

	static ResultMsg<BackendUri> parse(const std::string &uri);

	/// Fails naming the first parameter that is not in `allowed`.
	ResultMsg<void> onlyParams(const std::set<std::string> &allowed) const;
	/// A size parameter ("size", "chunk"); nullopt when absent, an error when malformed or 0.
	ResultMsg<std::optional<uint64_t>> sizeParam(const std::string &key) const;
	/// A duration parameter ("timeout=30s"); `fallback` when absent, an error when malformed or 0.
	ResultMsg<std::chrono::milliseconds> durationParam(const std::string &key, std::chrono::milliseconds fallback) const;
};

} // namespace r3d
