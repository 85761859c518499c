#pragma once

// What a running migration reports, on either side, for the daemon's Migration1 object and
// r3ctl's progress bars: one struct, filled by Seeder::progress() and Leecher::progress()
// and passed to their progress callbacks on every phase change and round.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "migration/migration_state.hpp"

namespace r3d::migration {

struct MigrationProgress {
	Role role = Role::Leecher;
	Phase phase = Phase::Tracking;
	std::string migrationId;
	uint64_t round = 0;       ///< pre-copy rounds done (0 during the first pass)
	uint64_t regionBytes = 0;
	/// Leecher: bytes pulled from the seeder (all priorities, re-pulls included); seeder:
	/// bytes it served to leechers.
	uint64_t transferredBytes = 0;
	/// Leecher: bytes still only on the seeder (to pull); seeder: dirty bytes not yet sent
	/// to the leecher furthest behind.
	uint64_t remoteBytes = 0;
	uint64_t dirtyBytes = 0;  ///< the last round's dirty set (leecher) / pending (seeder)
	double bandwidth = 0;     ///< bytes per second, smoothed (leecher)
	double dirtyRate = 0;     ///< bytes per second, smoothed (leecher)
	/// Predicted downtime of finalizing now; nanoseconds::max() while unknown.
	std::chrono::nanoseconds predictedDowntime = std::chrono::nanoseconds::max();
	/// Measured downtime, 0 until the handover: leecher, from the seeder's lock (the
	/// FinalizeAck says how long it had been locked) to its own unlock, less the ack's
	/// one-way trip; seeder, from its lock to the commit.
	std::chrono::nanoseconds downtime{ 0 };
	bool owner = false;       ///< leecher: it took ownership; seeder: it still owns
	unsigned leechers = 0;    ///< seeder: leechers connected now
	std::string failure;      ///< why it failed
};

using ProgressCallback = std::function<void(const MigrationProgress &progress)>;

} // namespace r3d::migration
