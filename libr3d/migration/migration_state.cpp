#include "migration/migration_state.hpp"

#include <fmt/format.h>

namespace r3d::migration {

const char *roleName(Role role)
{
	return role == Role::Seeder ? "seeder" : "leecher";
}

const char *phaseName(Phase phase)
{
	switch (phase) {
	case Phase::Tracking:
		return "tracking";
	case Phase::PreCopy:
		return "pre-copy";
	case Phase::Finalizing:
		return "finalizing";
	case Phase::PostCopy:
		return "post-copy";
	case Phase::Complete:
		return "complete";
	case Phase::Failed:
		return "failed";
	case Phase::Resuming:
		return "resuming";
	}
	return "unknown";
}

MigrationState::MigrationState(Role role, MigrationStateOptions options) : role_(role), options_(options) {}

ResultMsg<void> MigrationState::refuse(const char *event) const
{
	return r3d::fail(EINVAL, fmt::format("the {} cannot {} in phase {}", roleName(role_), event, phaseName(phase_)));
}

void MigrationState::moveTo(Phase to)
{
	Phase from = phase_;
	phase_ = to;
	if (listener_)
		listener_(from, to);
}

ResultMsg<void> MigrationState::firstPassDone()
{
	if (phase_ != Phase::Tracking)
		return refuse("end the first pass");
	moveTo(Phase::PreCopy);
	return {};
}

ResultMsg<void> MigrationState::roundDone()
{
	if (phase_ != Phase::PreCopy)
		return refuse("end a pre-copy round");
	++round_;
	moveTo(Phase::PreCopy);
	return {};
}

ResultMsg<void> MigrationState::beginFinalize()
{
	if (phase_ == Phase::Finalizing)
		return r3d::fail(EALREADY, fmt::format("the {} is already finalizing", roleName(role_)));
	if (phase_ == Phase::Tracking && !options_.finalizeBeforeFirstPass)
		return r3d::fail(EBUSY, fmt::format("the {} cannot finalize before the first pass has ended "
						    "(finalize before the first pass is disabled)",
						    roleName(role_)));
	if (phase_ != Phase::Tracking && phase_ != Phase::PreCopy)
		return refuse("finalize");
	beforeFinalize_ = phase_;
	moveTo(Phase::Finalizing);
	return {};
}

ResultMsg<void> MigrationState::abortFinalize()
{
	if (phase_ != Phase::Finalizing)
		return refuse("abort a finalize");
	moveTo(beforeFinalize_);
	return {};
}

ResultMsg<void> MigrationState::commit(bool owner)
{
	if (phase_ != Phase::Finalizing)
		return refuse("commit a handover");
	owner_ = owner;
	moveTo(Phase::PostCopy);
	return {};
}

ResultMsg<void> MigrationState::complete()
{
	if (phase_ != Phase::PostCopy)
		return refuse("complete");
	moveTo(Phase::Complete);
	return {};
}

ResultMsg<void> MigrationState::linkLost()
{
	switch (phase_) {
	case Phase::Tracking:
	case Phase::PreCopy:
	case Phase::Finalizing:
	case Phase::PostCopy:
		resumeFrom_ = phase_;
		moveTo(Phase::Resuming);
		return {};
	case Phase::Resuming:
		return {}; // a reconnect attempt failed: still resuming
	default:
		return refuse("lose the link");
	}
}

ResultMsg<void> MigrationState::resume(Phase to)
{
	if (phase_ != Phase::Resuming)
		return refuse("resume");
	bool ok = to == resumeFrom_;
	if (resumeFrom_ == Phase::Finalizing)
		ok = to == Phase::PostCopy || to == beforeFinalize_;
	if (!ok)
		return r3d::fail(EINVAL, fmt::format("the {} cannot resume into phase {} after losing the link in phase {}",
						     roleName(role_), phaseName(to), phaseName(resumeFrom_)));
	if (resumeFrom_ == Phase::Finalizing && to == Phase::PostCopy)
		owner_ = true; // the peer confirmed the commit this side had sent
	moveTo(to);
	return {};
}

ResultMsg<void> MigrationState::fail(std::string why)
{
	if (terminal())
		return refuse("fail");
	failure_ = std::move(why);
	moveTo(Phase::Failed);
	return {};
}

} // namespace r3d::migration
