#pragma once

// The phases of one migration, as one side sees it (a seeder keeps one per leecher), with
// only the legal transitions; any other fails with a message naming the phase and the event.
// Pure logic: the network layer turns messages and link events into these calls.
//
//   Tracking ──firstPassDone──▶ PreCopy ◀──roundDone──┐
//      │                          │ └─────────────────┘
//      └──beginFinalize (opt.)──▶ Finalizing ◀──beginFinalize
//                                 │   └──abortFinalize──▶ back to Tracking / PreCopy
//                                 └──commit──▶ PostCopy ──complete──▶ Complete
//   Tracking, PreCopy, Finalizing, PostCopy ──linkLost──▶ Resuming ──resume──▶ where it was
//     (from Finalizing, the peer says how the handover ended: PostCopy if committed, else
//      back to the phase before the finalize)
//   any phase but Complete and Failed ──fail──▶ Failed
//
// Tracking is the first full pass (writes are tracked from its start); PreCopy the dirty
// rounds; Finalizing the two-phase handover (the seeder is locked); PostCopy the leecher
// owns the region and pulls the rest on demand (a seeder in PostCopy serves reads only).

#include <cstdint>
#include <functional>
#include <string>

#include <r3d/result.hpp>

namespace r3d::migration {

enum class Role { Seeder, Leecher };
enum class Phase { Tracking, PreCopy, Finalizing, PostCopy, Complete, Failed, Resuming };

const char *roleName(Role role);
/// The Migration1.Phase strings: "tracking", "pre-copy", ….
const char *phaseName(Phase phase);

struct MigrationStateOptions {
	/// Whether a finalize may start before the first pass has ended. Allowed by default:
	/// the leecher already knows which chunks it has not pulled, so they and the final dirty
	/// list are post-copied; it only makes the post-copy phase longer.
	bool finalizeBeforeFirstPass = true;
};

class MigrationState
{
public:
	using Listener = std::function<void(Phase from, Phase to)>;

	explicit MigrationState(Role role, MigrationStateOptions options = {});

	Role role() const { return role_; }
	Phase phase() const { return phase_; }
	/// Pre-copy rounds done (0 during the first pass).
	uint64_t round() const { return round_; }
	/// In PostCopy or Complete: whether this side's leecher owns the region (false: a
	/// read-only copy of a fork-many migration that another leecher took over).
	bool owner() const { return owner_; }
	/// Where a Resuming migration goes back to.
	Phase resumeFrom() const { return resumeFrom_; }
	/// Why it failed.
	const std::string &failure() const { return failure_; }
	bool terminal() const { return phase_ == Phase::Complete || phase_ == Phase::Failed; }

	/// Called after every transition (for PhaseChanged).
	void onChange(Listener listener) { listener_ = std::move(listener); }

	ResultMsg<void> firstPassDone();
	ResultMsg<void> roundDone();
	ResultMsg<void> beginFinalize();
	/// The handover failed before the commit: back to where the finalize started.
	ResultMsg<void> abortFinalize();
	/// The handover committed. `owner`: this leecher took ownership (a seeder passes true
	/// for the session of the new owner, false for the others' sessions).
	ResultMsg<void> commit(bool owner = true);
	ResultMsg<void> complete();
	ResultMsg<void> linkLost();
	/// Back from Resuming to `to`: the phase it left, or, when it left Finalizing, PostCopy
	/// (the commit went through) or the phase before the finalize (it did not).
	ResultMsg<void> resume(Phase to);
	ResultMsg<void> fail(std::string why);

private:
	ResultMsg<void> refuse(const char *event) const;
	void moveTo(Phase to);

	Role role_;
	MigrationStateOptions options_;
	Phase phase_ = Phase::Tracking;
	Phase beforeFinalize_ = Phase::PreCopy;
	Phase resumeFrom_ = Phase::Tracking;
	uint64_t round_ = 0;
	bool owner_ = false;
	std::string failure_;
	Listener listener_;
};

} // namespace r3d::migration
