#pragma once

// Puts a chunk set (a round's dirty list, the chunks a resuming leecher holds) back together
// from its windows, one message each. The windows must come in ascending order without
// overlap, all of the same round and epoch, and nothing may follow the one marked last: a
// peer cannot make a set larger than the region or splice two rounds into one.

#include <cstdint>
#include <vector>

#include <r3d/result.hpp>

#include "migration/messages.hpp"

namespace r3d::migration {

class ChunkSetAssembler
{
public:
	explicit ChunkSetAssembler(uint64_t chunkCount) : chunkCount_(chunkCount) {}

	/// Adds one window (already checked against the region by its decoder). EPROTO when it
	/// is out of order, of another round or epoch, or comes after the last one.
	ResultMsg<void> add(const ChunkWindow &window, bool last, uint64_t round = 0, uint64_t epoch = 0);
	/// The last window has arrived.
	bool complete() const { return complete_; }
	uint64_t round() const { return round_; }
	uint64_t epoch() const { return epoch_; }
	/// The whole set in ascending order; starts over for the next set.
	std::vector<uint64_t> take();

private:
	uint64_t chunkCount_;
	std::vector<uint64_t> chunks_;
	uint64_t nextFirst_ = 0; ///< a window must start at or after this
	uint64_t round_ = 0, epoch_ = 0;
	bool started_ = false;
	bool complete_ = false;
};

} // namespace r3d::migration
