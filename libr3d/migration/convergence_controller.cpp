#include "migration/convergence_controller.hpp"

#include <algorithm>
#include <cmath>

namespace r3d::migration {

const char *finalizeReasonName(FinalizeReason reason)
{
	switch (reason) {
	case FinalizeReason::None:
		return "none";
	case FinalizeReason::UserRequested:
		return "user-requested";
	case FinalizeReason::DowntimeMet:
		return "downtime-met";
	case FinalizeReason::MaxRounds:
		return "max-rounds";
	case FinalizeReason::NotConverging:
		return "not-converging";
	}
	return "unknown";
}

ConvergenceController::ConvergenceController(ConvergenceOptions options, Clock clock)
	: options_(options), clock_(std::move(clock))
{
	options_.smoothing = std::clamp(options_.smoothing, 0.01, 1.0);
	if (options_.stallRounds == 0)
		options_.stallRounds = 1;
}

void ConvergenceController::beginRound()
{
	auto now = clock_();
	std::lock_guard lock(mutex_);
	roundStart_ = now;
	roundOpen_ = true;
}

Verdict ConvergenceController::endRound(uint64_t dirtiedBytes, uint64_t sentBytes)
{
	auto now = clock_();
	std::chrono::nanoseconds elapsed{ 0 };
	{
		std::lock_guard lock(mutex_);
		if (roundOpen_)
			elapsed = std::max(std::chrono::nanoseconds{ 0 }, now - roundStart_);
		// The next round starts where this one ended, without a gap in the dirty rate.
		roundStart_ = now;
	}
	return record(RoundSample{ dirtiedBytes, sentBytes, elapsed });
}

Verdict ConvergenceController::record(const RoundSample &sample)
{
	std::lock_guard lock(mutex_);
	const double seconds = std::chrono::duration<double>(sample.elapsed).count();
	const double a = options_.smoothing;
	if (seconds > 0) {
		// A round that sent nothing says nothing about the link: keep the old estimate.
		if (sample.sentBytes > 0) {
			double bw = static_cast<double>(sample.sentBytes) / seconds;
			bandwidth_ = haveBandwidth_ ? a * bw + (1 - a) * bandwidth_ : bw;
			haveBandwidth_ = true;
		}
		double dr = static_cast<double>(sample.dirtiedBytes) / seconds;
		dirtyRate_ = haveDirtyRate_ ? a * dr + (1 - a) * dirtyRate_ : dr;
		haveDirtyRate_ = true;
	}
	pending_ = sample.dirtiedBytes;
	++samples_;
	if (convergingLocked()) {
		stalled_ = 0;
	} else {
		++stalled_;
		if (options_.nonConverging == NonConvergingPolicy::Throttle && stalled_ >= options_.stallRounds)
			throttle_ = throttle_ == 0 ? 0.2 : std::min(0.99, throttle_ + 0.1);
	}
	return verdictLocked();
}

Verdict ConvergenceController::requestFinalize()
{
	std::lock_guard lock(mutex_);
	userRequested_ = true;
	return verdictLocked();
}

Verdict ConvergenceController::verdict() const
{
	std::lock_guard lock(mutex_);
	return verdictLocked();
}

bool ConvergenceController::convergingLocked() const
{
	// Nothing pending converges whatever the rates; an unknown link does not count against it.
	if (pending_ == 0 || !haveBandwidth_)
		return true;
	return dirtyRate_ < options_.convergeRatio * bandwidth_;
}

std::chrono::nanoseconds ConvergenceController::predictLocked() const
{
	if (pending_ == 0)
		return options_.handoverCost;
	if (!haveBandwidth_ || bandwidth_ <= 0)
		return std::chrono::nanoseconds::max();
	double ns = static_cast<double>(pending_) / bandwidth_ * 1e9 + static_cast<double>(options_.handoverCost.count());
	if (ns >= static_cast<double>(std::chrono::nanoseconds::max().count()))
		return std::chrono::nanoseconds::max();
	return std::chrono::nanoseconds(std::llround(ns));
}

Verdict ConvergenceController::verdictLocked() const
{
	Verdict v;
	v.converging = convergingLocked();
	v.throttle = throttle_;
	v.predictedDowntime = predictLocked();
	auto finalize = [&](FinalizeReason reason) {
		v.decision = Decision::Finalize;
		v.reason = reason;
		return v;
	};
	if (userRequested_)
		return finalize(FinalizeReason::UserRequested);
	if (samples_ == 0)
		return v;
	if (v.predictedDowntime <= options_.downtimeBudget)
		return finalize(FinalizeReason::DowntimeMet);
	if (samples_ - 1 >= options_.maxRounds)
		return finalize(FinalizeReason::MaxRounds);
	if (stalled_ >= options_.stallRounds && options_.nonConverging == NonConvergingPolicy::FinalizeEarly)
		return finalize(FinalizeReason::NotConverging);
	return v;
}

bool ConvergenceController::firstPassDone() const
{
	std::lock_guard lock(mutex_);
	return samples_ > 0;
}

uint64_t ConvergenceController::round() const
{
	std::lock_guard lock(mutex_);
	return samples_ == 0 ? 0 : samples_ - 1;
}

double ConvergenceController::bandwidth() const
{
	std::lock_guard lock(mutex_);
	return bandwidth_;
}

double ConvergenceController::dirtyRate() const
{
	std::lock_guard lock(mutex_);
	return dirtyRate_;
}

uint64_t ConvergenceController::pendingBytes() const
{
	std::lock_guard lock(mutex_);
	return pending_;
}

std::chrono::nanoseconds ConvergenceController::predictedDowntime() const
{
	std::lock_guard lock(mutex_);
	return predictLocked();
}

bool ConvergenceController::converging() const
{
	std::lock_guard lock(mutex_);
	return convergingLocked();
}

double ConvergenceController::throttle() const
{
	std::lock_guard lock(mutex_);
	return throttle_;
}

} // namespace r3d::migration
