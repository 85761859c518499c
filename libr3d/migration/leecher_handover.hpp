#pragma once

// The leecher's side of the two-phase handover (see seeder_handover.hpp): it checks every
// epoch the seeder sends against the one it knows, so a stale ack or a final list of another
// proposal is refused with ESTALE, and it says when the leecher may write: only after the
// seeder has accepted the commit (FinalizeCommitAck), or after a reconnect whose hello reply
// says the handover to this leecher went through.

#include <cstdint>
#include <string>

#include <r3d/result.hpp>

#include "migration/messages.hpp"

namespace r3d::migration {

class LeecherHandover
{
public:
	enum class Step {
		Idle,        ///< no handover running
		Requested,   ///< FinalizeRequest sent
		Receiving,   ///< acked; the final dirty list is arriving
		Committing,  ///< FinalizeCommit sent, waiting for its ack
		Owner,       ///< committed: this leecher owns the region
	};

	LeecherHandover(std::string migrationId, std::string leecherId);

	Step step() const { return step_; }
	/// The epoch of the owner this leecher knows (0 before the first hello reply).
	uint64_t epoch() const { return epoch_; }
	/// The epoch the seeder proposed to this leecher (0 if none).
	uint64_t proposed() const { return proposed_; }
	bool mayWrite() const { return step_ == Step::Owner; }

	/// The seeder's hello reply (first connect or reconnect). A reply saying the handover to
	/// this leecher went through makes it the owner (also after a restart that lost the
	/// handover state); one with an older epoch than known is refused (ESTALE), as is one
	/// saying this owner does not own.
	ResultMsg<void> welcomed(const MigrationHelloReply &reply);
	/// The request to send.
	ResultMsg<FinalizeRequest> request(uint64_t round);
	/// The seeder's answer to it: a refusal comes back as the error (and Idle again).
	ResultMsg<void> acked(const FinalizeAck &ack);
	/// Checks one message of the final dirty list against the proposal.
	ResultMsg<void> finalList(const DirtyList &part);
	/// The commit to send, once the whole final list is in (the caller has marked it remote).
	ResultMsg<FinalizeCommit> commit();
	/// The seeder's answer to the commit: success makes this leecher the owner.
	ResultMsg<void> commitAcked(const FinalizeCommitAck &ack);
	/// The link was lost or the handover was refused before the commit was sent: back to
	/// Idle. After the commit was sent only the seeder knows whether it went through, so the
	/// leecher stays in Committing until a commit ack or a hello reply tells it.
	void abort();

private:
	std::string migrationId_;
	std::string leecherId_;
	Step step_ = Step::Idle;
	uint64_t epoch_ = 0;
	uint64_t proposed_ = 0;
	bool listComplete_ = false;
};

} // namespace r3d::migration
