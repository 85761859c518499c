#include "migration/convergence_controller.hpp"

#include <algorithm>

#include <catch2/catch.hpp>

using namespace r3d::migration;
using namespace std::chrono_literals;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

/// A synthetic migration: a region of `region` bytes over a link of `bandwidth` bytes/s,
/// written at `dirtyRate` distinct bytes/s. Each round sends what the previous one left and
/// takes as long as that needs; the dirty set is what the writer touched meanwhile.
struct Simulation {
	double region = 1024 * kMiB;
	double bandwidth = 100 * kMiB;
	double dirtyRate = 0;

	struct Outcome {
		Verdict verdict;
		uint64_t round = 0;
		int samples = 0;
		double sent = 0;
	};

	Outcome run(ConvergenceController &c, int limit = 200) const
	{
		Outcome out;
		double pending = region; // the first pass sends everything
		for (out.samples = 1; out.samples <= limit; ++out.samples) {
			double seconds = pending / bandwidth;
			double dirtied = std::min(region, dirtyRate * seconds);
			out.sent += pending;
			out.verdict = c.record(RoundSample{ static_cast<uint64_t>(dirtied), static_cast<uint64_t>(pending),
							    std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9)) });
			pending = dirtied;
			if (out.verdict.decision == Decision::Finalize)
				break;
		}
		out.round = c.round();
		return out;
	}
};

struct FakeClock {
	std::chrono::steady_clock::time_point now{};
	ConvergenceController::Clock fn()
	{
		return [this] { return now; };
	}
};

} // namespace

TEST_CASE("nothing dirtied: finalize right after the first pass", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{});
	auto out = Simulation{ .dirtyRate = 0 }.run(c);
	CHECK(out.verdict.decision == Decision::Finalize);
	CHECK(out.verdict.reason == FinalizeReason::DowntimeMet);
	CHECK(out.round == 0);
	CHECK(c.predictedDowntime() == 0ns);
	CHECK(c.dirtyRate() == 0);
	CHECK(c.bandwidth() == Approx(100 * kMiB));
	CHECK(out.verdict.converging);
}

TEST_CASE("dirty rate well below bandwidth: the set shrinks until the downtime fits", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 50ms });
	// 1 GiB at 100 MiB/s, dirtied at 25 MiB/s: 256, 64, 16, 4 MiB pending → 40 ms.
	auto out = Simulation{ .dirtyRate = 25 * kMiB }.run(c);
	CHECK(out.verdict.decision == Decision::Finalize);
	CHECK(out.verdict.reason == FinalizeReason::DowntimeMet);
	CHECK(out.round == 3);
	CHECK(out.verdict.converging);
	CHECK(out.verdict.predictedDowntime <= 50ms);
	CHECK(c.dirtyRate() == Approx(25 * kMiB).epsilon(0.01));
	CHECK(c.bandwidth() == Approx(100 * kMiB).epsilon(0.01));
	// The bytes sent stay well under 1.3 × the region.
	CHECK(out.sent < 1.34 * 1024 * kMiB);
}

TEST_CASE("dirty rate near bandwidth: converging too slowly, finalized at max rounds", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 50ms, .maxRounds = 30 });
	auto out = Simulation{ .dirtyRate = 95 * kMiB }.run(c);
	CHECK(out.verdict.decision == Decision::Finalize);
	CHECK(out.verdict.reason == FinalizeReason::MaxRounds);
	CHECK(out.round == 30);
	CHECK(out.verdict.converging); // it shrinks, only not fast enough
	CHECK(out.verdict.predictedDowntime > 50ms);
}

TEST_CASE("dirty rate above bandwidth: not converging, finalized early by default", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 50ms, .maxRounds = 30 });
	auto out = Simulation{ .dirtyRate = 200 * kMiB }.run(c);
	CHECK(out.verdict.decision == Decision::Finalize);
	CHECK(out.verdict.reason == FinalizeReason::NotConverging);
	CHECK_FALSE(out.verdict.converging);
	CHECK_FALSE(c.converging());
	// The first pass and one pre-copy round both failed to shrink the set (stallRounds 2).
	CHECK(out.round == 1);
	CHECK(c.dirtyRate() >= c.bandwidth());
}

TEST_CASE("not converging with KeepRounds: goes on to max rounds", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .maxRounds = 10, .nonConverging = NonConvergingPolicy::KeepRounds });
	auto out = Simulation{ .dirtyRate = 200 * kMiB }.run(c);
	CHECK(out.verdict.decision == Decision::Finalize);
	CHECK(out.verdict.reason == FinalizeReason::MaxRounds);
	CHECK(out.round == 10);
	CHECK_FALSE(out.verdict.converging);
	CHECK(out.verdict.throttle == 0);
}

TEST_CASE("not converging with Throttle: the throttle grows, capped, then max rounds", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .maxRounds = 20, .nonConverging = NonConvergingPolicy::Throttle });
	Simulation sim{ .dirtyRate = 200 * kMiB };
	// Two stalled samples (the first pass and round 1) start the throttle at 0.2.
	sim.run(c, 2);
	CHECK(c.throttle() == Approx(0.2));
	CHECK(c.verdict().decision == Decision::Continue);
	ConvergenceController d(ConvergenceOptions{ .maxRounds = 20, .nonConverging = NonConvergingPolicy::Throttle });
	auto out = sim.run(d);
	CHECK(out.verdict.reason == FinalizeReason::MaxRounds);
	CHECK(out.verdict.throttle == Approx(0.99));
	CHECK(d.throttle() <= 0.99);
}

TEST_CASE("the downtime budget is met exactly at the boundary", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 50ms });
	// 100 MB/s, 5 MB pending: exactly 50 ms.
	auto v = c.record(RoundSample{ 5'000'000, 1'000'000'000, 10s });
	CHECK(c.bandwidth() == Approx(1e8));
	CHECK(c.predictedDowntime() == 50ms);
	CHECK(v.decision == Decision::Finalize);
	CHECK(v.reason == FinalizeReason::DowntimeMet);

	ConvergenceController d(ConvergenceOptions{ .downtimeBudget = 50ms });
	v = d.record(RoundSample{ 5'000'001, 1'000'000'000, 10s });
	CHECK(v.decision == Decision::Continue);
	CHECK(v.predictedDowntime > 50ms);
}

TEST_CASE("the handover cost is part of the predicted downtime", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 50ms, .handoverCost = 40ms });
	auto v = c.record(RoundSample{ 2'000'000, 1'000'000'000, 10s }); // 20 ms of data + 40 ms
	CHECK(v.predictedDowntime == 60ms);
	CHECK(v.decision == Decision::Continue);
}

TEST_CASE("max rounds 0 is the one-pass mode: finalize after the first pass", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .maxRounds = 0 });
	auto out = Simulation{ .dirtyRate = 50 * kMiB }.run(c);
	CHECK(out.verdict.reason == FinalizeReason::MaxRounds);
	CHECK(out.samples == 1);
	CHECK(out.round == 0);
}

TEST_CASE("the user can force a finalize, even before the first pass", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{});
	CHECK(c.verdict().decision == Decision::Continue);
	CHECK_FALSE(c.firstPassDone());
	auto v = c.requestFinalize();
	CHECK(v.decision == Decision::Finalize);
	CHECK(v.reason == FinalizeReason::UserRequested);
	// It stays requested whatever the next round measures.
	v = c.record(RoundSample{ 1'000'000'000, 1'000'000, 10s });
	CHECK(v.reason == FinalizeReason::UserRequested);
	CHECK(c.firstPassDone());
}

TEST_CASE("before the first pass ends there is no estimate and no automatic finalize", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{});
	auto v = c.verdict();
	CHECK(v.decision == Decision::Continue);
	CHECK(c.bandwidth() == 0);
	CHECK(c.round() == 0);
}

TEST_CASE("a round that sent nothing keeps the bandwidth unknown and the downtime unbounded", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .maxRounds = 5 });
	auto v = c.record(RoundSample{ 4096, 0, 1s });
	CHECK(c.bandwidth() == 0);
	CHECK(v.predictedDowntime == std::chrono::nanoseconds::max());
	CHECK(v.decision == Decision::Continue);
	CHECK(v.converging); // unknown link: not held against it
	// A later round that sends gives the estimate.
	v = c.record(RoundSample{ 4096, 1'000'000, 1s });
	CHECK(c.bandwidth() == Approx(1e6));
	CHECK(v.decision == Decision::Finalize);
}

TEST_CASE("estimates are smoothed with the configured weight", "[controller]")
{
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 0ns, .smoothing = 0.5 });
	(void)c.record(RoundSample{ 100, 1000, 1s });
	(void)c.record(RoundSample{ 300, 2000, 1s });
	CHECK(c.bandwidth() == Approx(1500));
	CHECK(c.dirtyRate() == Approx(200));
	CHECK(c.pendingBytes() == 300);
	(void)c.record(RoundSample{ 0, 0, 1s }); // nothing sent: bandwidth unchanged, dirty rate decays
	CHECK(c.bandwidth() == Approx(1500));
	CHECK(c.dirtyRate() == Approx(100));
}

TEST_CASE("rounds are timed on the injected clock", "[controller]")
{
	FakeClock clock;
	ConvergenceController c(ConvergenceOptions{ .downtimeBudget = 10ms }, clock.fn());
	c.beginRound();
	clock.now += 2s;
	auto v = c.endRound(50'000'000, 200'000'000);
	CHECK(c.bandwidth() == Approx(1e8));
	CHECK(c.dirtyRate() == Approx(2.5e7));
	CHECK(v.predictedDowntime == 500ms);
	CHECK(v.decision == Decision::Continue);
	// The next round starts where the last ended.
	clock.now += 500ms;
	v = c.endRound(500'000, 50'000'000);
	CHECK(c.round() == 1);
	CHECK(c.bandwidth() == Approx(1e8));
	CHECK(v.predictedDowntime == 5ms);
	CHECK(v.decision == Decision::Finalize);
	CHECK(v.reason == FinalizeReason::DowntimeMet);
}

TEST_CASE("reason names", "[controller]")
{
	CHECK(std::string(finalizeReasonName(FinalizeReason::NotConverging)) == "not-converging");
	CHECK(std::string(finalizeReasonName(FinalizeReason::DowntimeMet)) == "downtime-met");
}
