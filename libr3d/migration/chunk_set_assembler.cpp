#include "migration/chunk_set_assembler.hpp"

#include <fmt/format.h>

namespace r3d::migration {

ResultMsg<void> ChunkSetAssembler::add(const ChunkWindow &window, bool last, uint64_t round, uint64_t epoch)
{
	if (complete_)
		return fail(EPROTO, "a chunk set window arrived after the set's last one");
	if (window.first >= window.end || window.end > chunkCount_)
		return fail(EPROTO, fmt::format("chunk set window [{}, {}) is outside the region's {} chunks",
						window.first, window.end, chunkCount_));
	if (started_ && (round != round_ || epoch != epoch_))
		return fail(EPROTO, fmt::format("chunk set window of round {} epoch {} inside the set of round {} epoch {}",
						round, epoch, round_, epoch_));
	if (window.first < nextFirst_)
		return fail(EPROTO, fmt::format("chunk set window [{}, {}) overlaps or precedes the previous one (ends at {})",
						window.first, window.end, nextFirst_));
	started_ = true;
	round_ = round;
	epoch_ = epoch;
	nextFirst_ = window.end;
	chunks_.insert(chunks_.end(), window.chunks.begin(), window.chunks.end());
	complete_ = last;
	return {};
}

std::vector<uint64_t> ChunkSetAssembler::take()
{
	std::vector<uint64_t> out;
	out.swap(chunks_);
	nextFirst_ = 0;
	started_ = false;
	complete_ = false;
	return out;
}

} // namespace r3d::migration
