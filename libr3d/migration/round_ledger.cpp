#include "migration/round_ledger.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace r3d::migration {

ResultMsg<void> RoundLedger::sent(const DirtyRound &round)
{
	if (round.round <= lastSent_)
		return fail(EINVAL, fmt::format("round {} sent after round {}", round.round, lastSent_));
	if (rounds_.size() >= maxUnconfirmed_)
		return fail(EBUSY, fmt::format("{} rounds unconfirmed (up to round {}); the leecher must confirm first",
					       rounds_.size(), lastSent_));
	rounds_.push_back(round);
	lastSent_ = round.round;
	return {};
}

ResultMsg<void> RoundLedger::confirmed(uint64_t round)
{
	if (round > lastSent_)
		return fail(ESTALE, fmt::format("the leecher confirms round {}, only {} was sent", round, lastSent_));
	// An older confirmation (reordered, repeated) changes nothing.
	while (!rounds_.empty() && rounds_.front().round <= round)
		rounds_.pop_front();
	lastConfirmed_ = std::max(lastConfirmed_, round);
	return {};
}

ResultMsg<std::vector<uint64_t>> RoundLedger::resume(uint64_t leecherRound)
{
	if (leecherRound > lastSent_)
		return fail(ESTALE, fmt::format("the leecher resumes at round {}, only {} was sent", leecherRound, lastSent_));
	if (leecherRound < lastConfirmed_)
		return fail(ESTALE, fmt::format("the leecher resumes at round {}, but had confirmed round {}", leecherRound,
						lastConfirmed_));
	std::vector<uint64_t> out;
	for (const auto &r : rounds_)
		if (r.round > leecherRound)
			out.insert(out.end(), r.chunks.begin(), r.chunks.end());
	std::sort(out.begin(), out.end());
	out.erase(std::unique(out.begin(), out.end()), out.end());
	rounds_.clear();
	// The requeued chunks come back in the next round taken, numbered after lastSent_:
	// round numbers only ever grow, so a list from before the cut is never taken for a new one.
	lastConfirmed_ = leecherRound;
	return out;
}

} // namespace r3d::migration
