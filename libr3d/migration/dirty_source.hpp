#pragma once

// Where a seeder learns which chunks changed: "the chunks written since the last round",
// taken in one step that also starts the next round, so a write racing with the take lands
// in this round or the next one, never in neither. Chunk indices only, nothing about how
// writes arrive: an NBD export tracks them in TrackingReadWriterAt (TrackingDirtySource), a
// userfaultfd memory region will track them with write-protect faults behind the same
// interface, and DirtyFanout gives each of N leechers its own view of one source.

#include <cstdint>
#include <vector>

#include <r3d/result.hpp>

namespace r3d::migration {

/// Length of `chunks` (ascending) of a region of `size` bytes in chunks of `chunk` bytes.
inline uint64_t chunkBytes(const std::vector<uint64_t> &chunks, uint64_t size, uint64_t chunk)
{
	uint64_t count = (size + chunk - 1) / chunk;
	uint64_t bytes = chunks.size() * chunk;
	// Only the last chunk of the region can be short.
	if (!chunks.empty() && chunks.back() == count - 1)
		bytes -= count * chunk - size;
	return bytes;
}

/// One round's dirty set.
struct DirtyRound {
	uint64_t round = 0;           ///< 1 for the first take after start()
	std::vector<uint64_t> chunks; ///< ascending, no duplicates
	uint64_t bytes = 0;           ///< their length (the region's last chunk may be short)
};

class DirtySource
{
public:
	virtual ~DirtySource() = default;

	virtual uint64_t regionSize() const = 0;
	virtual uint64_t chunkSize() const = 0;
	uint64_t chunkCount() const { return (regionSize() + chunkSize() - 1) / chunkSize(); }

	/// Arms tracking with an empty set; writes from now on are recorded. Round 0 is the
	/// first full pass, which needs no list.
	virtual Result<void> start() = 0;
	/// Disarms tracking and forgets the set.
	virtual void stop() = 0;
	virtual bool started() const = 0;
	/// The chunks written since start() or the previous take, clearing them atomically:
	/// the next round starts at the same instant. ENOTCONN when not started.
	virtual Result<DirtyRound> take() = 0;
	/// Puts chunks back into the round now running, as if written again: the chunks a
	/// resuming leecher does not hold (lost in flight), a round whose send failed. Indices
	/// past the region are ignored. ENOTCONN when not started.
	virtual Result<void> requeue(const std::vector<uint64_t> &chunks) = 0;
	/// Chunks written and not taken yet, cheap and racy (for progress and the controller).
	virtual uint64_t pendingChunks() const = 0;
	/// Rounds taken since start().
	virtual uint64_t round() const = 0;
};

} // namespace r3d::migration
