#pragma once

// When pre-copy stops. Fed once per round with the bytes dirtied during it (the dirty set
// the next round must carry), the bytes sent and the time it took, it keeps smoothed
// estimates of the dirty rate and the bandwidth and predicts the downtime of finalizing now:
// the seeder is locked while the pending bytes cross the link, so
//     predicted downtime = handover cost + pending bytes / bandwidth.
// (QEMU's switchover rule is the same comparison: pending ≤ bandwidth × downtime limit.)
//
// Policy, checked in this order after every round:
//   1. the user asked                        → finalize (any time, even before the first pass)
//   2. the first pass has not ended          → continue (there is no estimate yet)
//   3. predicted downtime ≤ budget           → finalize
//   4. maxRounds pre-copy rounds done         → finalize (maxRounds 0: r3map's one-pass mode)
//   5. not converging (dirty rate ≥ ratio × bandwidth) for stallRounds rounds in a row:
//        FinalizeEarly (default) → finalize: more rounds cannot shrink the set, they only
//                                  resend it; post-copy carries the rest on demand;
//        KeepRounds              → continue to maxRounds (the writer may calm down);
//        Throttle                → continue and ask for the writer to be slowed down by
//                                  throttle() (0.2, +0.1 per further stalled round, ≤ 0.99;
//                                  never lowered again within one migration).
// Every rate is per second of the injected clock, so tests never look at the wall clock.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace r3d::migration {

enum class NonConvergingPolicy { FinalizeEarly, KeepRounds, Throttle };

enum class Decision { Continue, Finalize };

enum class FinalizeReason { None, UserRequested, DowntimeMet, MaxRounds, NotConverging };
const char *finalizeReasonName(FinalizeReason reason);

struct ConvergenceOptions {
	std::chrono::nanoseconds downtimeBudget = std::chrono::milliseconds(50);
	/// Pre-copy rounds after the first pass before finalizing anyway.
	unsigned maxRounds = 30;
	/// Weight of the newest round in the moving averages, (0, 1].
	double smoothing = 0.5;
	/// The fixed part of the downtime: the handover's round trips, suspend and flush.
	std::chrono::nanoseconds handoverCost{ 0 };
	NonConvergingPolicy nonConverging = NonConvergingPolicy::FinalizeEarly;
	/// Consecutive non-converging rounds before the policy acts.
	unsigned stallRounds = 2;
	/// Not converging when dirty rate ≥ convergeRatio × bandwidth.
	double convergeRatio = 1.0;
};

/// What one round measured.
struct RoundSample {
	uint64_t dirtiedBytes = 0; ///< the dirty set taken at the round's end
	uint64_t sentBytes = 0;
	std::chrono::nanoseconds elapsed{ 0 };
};

struct Verdict {
	Decision decision = Decision::Continue;
	FinalizeReason reason = FinalizeReason::None;
	bool converging = true;
	/// Fraction of the writer's rate to hold back (Throttle policy), 0 otherwise.
	double throttle = 0;
	std::chrono::nanoseconds predictedDowntime = std::chrono::nanoseconds::max();
};

class ConvergenceController
{
public:
	using Clock = std::function<std::chrono::steady_clock::time_point()>;

	explicit ConvergenceController(ConvergenceOptions options, Clock clock = &std::chrono::steady_clock::now);

	/// Marks the start of a round (the first pass is round 0) on the clock.
	void beginRound();
	/// Ends the round begun last, timing it on the clock.
	Verdict endRound(uint64_t dirtiedBytes, uint64_t sentBytes);
	/// Records a round measured elsewhere.
	Verdict record(const RoundSample &sample);
	/// The user's Finalize(): the next verdict (and this one) says finalize. Any thread.
	Verdict requestFinalize();
	/// The verdict for what was recorded so far.
	Verdict verdict() const;

	bool firstPassDone() const;
	/// Pre-copy rounds recorded after the first pass.
	uint64_t round() const;
	/// Smoothed bytes per second (0 until a round sent something).
	double bandwidth() const;
	double dirtyRate() const;
	/// Bytes the next round (or the finalize) must carry.
	uint64_t pendingBytes() const;
	/// nanoseconds::max() while the bandwidth is unknown and something is pending.
	std::chrono::nanoseconds predictedDowntime() const;
	bool converging() const;
	double throttle() const;

private:
	Verdict verdictLocked() const;
	std::chrono::nanoseconds predictLocked() const;
	bool convergingLocked() const;

	ConvergenceOptions options_;
	Clock clock_;
	mutable std::mutex mutex_;
	std::chrono::steady_clock::time_point roundStart_{};
	bool roundOpen_ = false;
	uint64_t samples_ = 0;
	double bandwidth_ = 0;
	double dirtyRate_ = 0;
	bool haveBandwidth_ = false;
	bool haveDirtyRate_ = false;
	uint64_t pending_ = 0;
	unsigned stalled_ = 0;
	double throttle_ = 0;
	bool userRequested_ = false;
};

} // namespace r3d::migration
