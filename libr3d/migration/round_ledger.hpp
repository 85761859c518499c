#pragma once

// The seeder's memory of the dirty lists it sent one leecher and that the leecher has not
// confirmed yet. A list taken from the dirty view and lost with the link would lose its
// chunks for good (the view has forgotten them), so every list is kept until the leecher
// confirms the round (RoundRequest.applied_round, Resume.round); on a resume the lists of
// the rounds after the leecher's go back into its view (DirtySource::requeue). Chunks the
// leecher had received are marked remote on its side and pulled again by it, so nothing
// else needs re-sending. Bounded: at most maxUnconfirmed rounds, since the leecher asks for
// one round at a time.

#include <cstdint>
#include <deque>
#include <vector>

#include <r3d/result.hpp>

#include "migration/dirty_source.hpp"

namespace r3d::migration {

class RoundLedger
{
public:
	explicit RoundLedger(size_t maxUnconfirmed = 4) : maxUnconfirmed_(maxUnconfirmed) {}

	/// A round's list is about to go on the link. EBUSY when maxUnconfirmed rounds are
	/// already unconfirmed (the leecher must confirm before it gets more), EINVAL when the
	/// round is not after the last one sent.
	ResultMsg<void> sent(const DirtyRound &round);
	/// The leecher has every list up to `round`; ESTALE for a round never sent.
	ResultMsg<void> confirmed(uint64_t round);
	/// After a reconnect: the leecher has every list up to `leecherRound`. Returns the chunks
	/// of the later rounds (ascending, once each), to requeue, and forgets all rounds.
	ResultMsg<std::vector<uint64_t>> resume(uint64_t leecherRound);

	uint64_t lastSent() const { return lastSent_; }
	uint64_t lastConfirmed() const { return lastConfirmed_; }
	size_t unconfirmed() const { return rounds_.size(); }

private:
	size_t maxUnconfirmed_;
	std::deque<DirtyRound> rounds_; ///< unconfirmed, ascending
	uint64_t lastSent_ = 0;
	uint64_t lastConfirmed_ = 0;
};

} // namespace r3d::migration
