#pragma once

// The knobs of a managed mount, one parser for every surface: r3serve --managed flags,
// Manager1.Mount options, r3ctl mount --managed. Keys are the same everywhere.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <r3d/result.hpp>

#include "stages/puller.hpp"

namespace r3d::mount {

struct ManagedOptions {
	/// "cache": a directory (data, journal, lock), or "" / "memory": in RAM, not resumable.
	std::string cache;
	/// "chunk-size": 0 picks 64 KiB, or the remote's own chunk if larger.
	uint64_t chunk = 0;
	unsigned pullWorkers = 8;                            ///< "pull-workers", 1..256
	std::chrono::milliseconds pushInterval{ 5000 };      ///< "push-interval"
	stages::PullOrder order = stages::PullOrder::Linear; ///< "order": linear|reverse|hot:FILE
	std::string hotFile;
	uint64_t pullFirstBytes = 0;   ///< "pull-first": SIZE ...
	unsigned pullFirstPercent = 0; ///< ... or N%
	uint64_t pullRate = 0;         ///< "pull-rate": bytes/s
	uint64_t pushRate = 0;         ///< "push-rate": bytes/s
	/// "remote-timeout": how long a read of a remote chunk waits for an unreachable remote
	/// before it fails with EIO (also how long Sync() and unmount keep retrying a push).
	std::chrono::milliseconds remoteTimeout{ 60000 };
	bool background = true;    ///< "background": false pulls only what is read
	bool discardLocal = false; ///< "discard-local": throw away a cache's state instead of resuming
};

/// The keys setManagedOption() takes, for usage texts and error messages.
const std::vector<std::string> &managedOptionKeys();

/// Sets one option from its text form. EINVAL with a message naming the key and the problem.
ResultMsg<void> setManagedOption(ManagedOptions &options, std::string_view key, std::string_view value);

/// Reads a hot list: one range per line, "START LENGTH" in bytes (size suffixes allowed);
/// blank lines and lines starting with # are skipped. Returned as chunk ranges [first, last].
ResultMsg<std::vector<std::pair<uint64_t, uint64_t>>> readHotList(const std::string &path, uint64_t chunk,
								   uint64_t size);

} // namespace r3d::mount
