#include "migration/leecher_handover.hpp"

#include <fmt/format.h>

namespace r3d::migration {

LeecherHandover::LeecherHandover(std::string migrationId, std::string leecherId)
	: migrationId_(std::move(migrationId)), leecherId_(std::move(leecherId))
{
}

ResultMsg<void> LeecherHandover::welcomed(const MigrationHelloReply &reply)
{
	if (reply.error != 0)
		return fail(reply.error, fmt::format("the seeder refused: {}", reply.message));
	if (reply.migrationId != migrationId_)
		return fail(ENOENT, fmt::format("the seeder serves migration '{}', not '{}'", reply.migrationId,
						migrationId_));
	if (reply.epoch < epoch_)
		return fail(ESTALE, fmt::format("the seeder is at epoch {}, older than the known {}", reply.epoch, epoch_));
	if (reply.handedOver) {
		// Our commit went through while the link was down, its ack was lost, or this
		// leecher restarted without its handover state: the seeder, which decided the
		// commit, is the authority, and it says so only to the owner.
		if (step_ == Step::Owner && reply.epoch != epoch_)
			return fail(ESTALE, fmt::format("this leecher owns the region at epoch {}, the seeder says {}", epoch_,
							reply.epoch));
		epoch_ = reply.epoch;
		proposed_ = 0;
		step_ = Step::Owner;
		return {};
	}
	if (step_ == Step::Owner)
		return fail(ESTALE, fmt::format("this leecher owns the region at epoch {}, the seeder says otherwise "
						"(epoch {})",
						epoch_, reply.epoch));
	// A handover not committed is over: the seeder aborted it when the link went.
	epoch_ = reply.epoch;
	step_ = Step::Idle;
	proposed_ = 0;
	listComplete_ = false;
	return {};
}

ResultMsg<FinalizeRequest> LeecherHandover::request(uint64_t round)
{
	if (epoch_ == 0)
		return fail(ENOTCONN, "no hello reply yet: the owner's epoch is unknown");
	if (step_ == Step::Owner)
		return fail(EALREADY, fmt::format("this leecher already owns the region (epoch {})", epoch_));
	if (step_ != Step::Idle)
		return fail(EALREADY, "a finalize is already running");
	step_ = Step::Requested;
	return FinalizeRequest{ migrationId_, leecherId_, epoch_, round };
}

ResultMsg<void> LeecherHandover::acked(const FinalizeAck &ack)
{
	if (step_ != Step::Requested)
		return fail(EPROTO, "a finalize ack without a request");
	if (ack.error != 0) {
		step_ = Step::Idle;
		return fail(ack.error, fmt::format("the seeder refused the finalize: {}", ack.message));
	}
	if (ack.epoch <= epoch_) {
		step_ = Step::Idle;
		return fail(ESTALE, fmt::format("the seeder proposed epoch {}, not newer than the known {}", ack.epoch,
						epoch_));
	}
	proposed_ = ack.epoch;
	listComplete_ = false;
	step_ = Step::Receiving;
	return {};
}

ResultMsg<void> LeecherHandover::finalList(const DirtyList &part)
{
	if (step_ != Step::Receiving || listComplete_)
		return fail(EPROTO, "a final dirty list outside a handover");
	if (part.epoch != proposed_)
		return fail(ESTALE, fmt::format("final dirty list of epoch {}, the proposal is {}", part.epoch, proposed_));
	listComplete_ = part.last;
	return {};
}

ResultMsg<FinalizeCommit> LeecherHandover::commit()
{
	if (step_ != Step::Receiving || !listComplete_)
		return fail(EPROTO, "cannot commit before the whole final dirty list has arrived");
	step_ = Step::Committing;
	return FinalizeCommit{ migrationId_, leecherId_, proposed_ };
}

ResultMsg<void> LeecherHandover::commitAcked(const FinalizeCommitAck &ack)
{
	if (step_ != Step::Committing)
		return fail(EPROTO, "a commit ack without a commit");
	if (ack.error != 0) {
		// Refused: the seeder aborted the proposal (timeout) and owns the region again.
		step_ = Step::Idle;
		proposed_ = 0;
		return fail(ack.error, fmt::format("the seeder refused the commit: {}", ack.message));
	}
	if (ack.epoch != proposed_)
		return fail(ESTALE, fmt::format("commit ack of epoch {}, the proposal is {}", ack.epoch, proposed_));
	epoch_ = proposed_;
	step_ = Step::Owner;
	return {};
}

void LeecherHandover::abort()
{
	if (step_ == Step::Requested || step_ == Step::Receiving) {
		step_ = Step::Idle;
		proposed_ = 0;
		listComplete_ = false;
	}
}

} // namespace r3d::migration
