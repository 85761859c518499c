#pragma once

// The counters of an NBD server, defined once: Stats is the snapshot callers get, and the
// server counts into the same struct over atomics. forEachCounter() is the one list of
// their names, used by r3serve's stats file and exit report and by r3mapd's Statistics.

#include <atomic>
#include <cstdint>

#include "base/counters.hpp"

namespace r3d::nbd {

/// Counters over all connections of a server; T is uint64_t for a snapshot and
/// std::atomic<uint64_t> inside the server.
template <class T>
struct BasicStats {
	/// A gauge, not a counter: connections open now. forEachCounter() leaves it out.
	T activeConnections{};

	T connections{};
	T reads{};
	T writes{};
	T flushes{};
	T trims{};
	T writeZeroes{};
	T caches{};
	T blockStatus{};
	T bytesRead{};
	T bytesWritten{};
	T errors{};
};

using Stats = BasicStats<uint64_t>;

/// Calls fn(name, a.x, b.x) for every counter x, in a fixed order, named in snake_case.
/// The one place that lists the counters; forEachCounter() is the usual way in.
template <class A, class B, class Fn>
void forEachCounterPair(A &a, B &b, Fn &&fn)
{
	fn("connections", a.connections, b.connections);
	fn("reads", a.reads, b.reads);
	fn("writes", a.writes, b.writes);
	fn("flushes", a.flushes, b.flushes);
	fn("trims", a.trims, b.trims);
	fn("write_zeroes", a.writeZeroes, b.writeZeroes);
	fn("caches", a.caches, b.caches);
	fn("block_status", a.blockStatus, b.blockStatus);
	fn("bytes_read", a.bytesRead, b.bytesRead);
	fn("bytes_written", a.bytesWritten, b.bytesWritten);
	fn("errors", a.errors, b.errors);
}

/// Calls fn(const char *name, uint64_t value) for every counter of `s` (not the
/// activeConnections gauge), in the order and with the names of r3serve's stats file.
template <class Fn>
void forEachCounter(const Stats &s, Fn &&fn)
{
	forEachCounterPair(s, s, [&](const char *name, uint64_t value, uint64_t) { fn(name, value); });
}

/// Every counter of `s`, then the active_connections gauge.
inline Counters counterList(const Stats &s)
{
	Counters out;
	forEachCounter(s, [&](const char *name, uint64_t value) { out.emplace_back(name, value); });
	out.emplace_back("active_connections", s.activeConnections);
	return out;
}

} // namespace r3d::nbd
