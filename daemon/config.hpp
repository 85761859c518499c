#pragma once

#include <cstdint>
#include <set>
#include <string>

#include <r3d/result.hpp>

#include "base/limits.hpp"

namespace r3mapd {

/// r3mapd's configuration, /etc/r3map/r3mapd.json, validated once at startup; see r3mapd.conf(5).
struct Config {
	static constexpr const char *kDefaultPath = "/etc/r3map/r3mapd.json";
	static constexpr uint64_t kMinChunkSize = r3d::limits::kMinChunk;
	static constexpr uint64_t kMaxChunkSize = r3d::limits::kMaxChunk;
	static constexpr uint64_t kMinRequestSize = r3d::limits::kMinMaxPayload;
	static constexpr uint64_t kMaxRequestSize = r3d::limits::kMaxMaxPayload;

	/// Chunk size of a mount that does not ask for one.
	uint64_t defaultChunkSize = 4096;
	/// Largest NBD request payload the daemon's servers accept.
	uint64_t maxRequestSize = r3d::limits::kDefaultMaxPayload;
	/// Backend schemes callers may use; empty means every scheme this build knows.
	std::set<std::string> allowedSchemes;
	/// The schemes callers other than root may use (also subject to allowedSchemes): none
	/// that makes the daemon, which runs as root, open a local path for them.
	std::set<std::string> unprivilegedSchemes{ "memory", "r3", "redis", "s3" };
	std::string logLevel = "info";
	/// Group (name or number) whose members may call mutating methods besides root.
	std::string accessGroup = "r3map";
	/// Where ids and mount specs survive restarts (see StateStore); empty: nowhere. r3mapd
	/// defaults it to $STATE_DIRECTORY, which the unit's StateDirectory=r3map sets.
	std::string stateDir;
	/// How often the daemon checks that the system bus answers it (its bus thread and
	/// dbus-daemon); 0 turns the check off. See r3mapd.conf(5), bus_check_seconds.
	uint64_t busCheckSeconds = 10;
	/// Where apps hand their memory regions over (r3d::DaemonRegion); empty: nowhere.
	std::string regionSocket = "/run/r3map/regions.sock";

	/// Parses JSON text; `source` names it in messages. Unknown keys, wrong types and
	/// out-of-range values fail with a message naming the key and the problem.
	static r3d::ResultMsg<Config> parse(const std::string &text, const std::string &source);
	/// Reads and parses a file. A missing file gives the defaults unless `mustExist`.
	static r3d::ResultMsg<Config> load(const std::string &path, bool mustExist);

	bool schemeAllowed(const std::string &scheme) const;
	/// Whether a caller other than root may use `scheme`.
	bool schemeUnprivileged(const std::string &scheme) const;
};

/// A chunk size must be a power of two from kMinChunkSize to kMaxChunkSize.
r3d::ResultMsg<void> checkChunkSize(uint64_t bytes);

/// Whether `name` is a log level r3d::log::setLevel() accepts.
bool isLogLevel(const std::string &name);

} // namespace r3mapd
