#include "progress_report.hpp"

#include <algorithm>

#include <unistd.h>

#include <fmt/format.h>

#include <r3d/size.hpp>

namespace r3ctl {

namespace {

constexpr size_t kBarWidth = 30;

std::string eta(uint64_t left, uint64_t rate)
{
	if (left == 0)
		return "0s";
	if (rate == 0)
		return "?";
	uint64_t s = (left + rate - 1) / rate;
	if (s >= 3600)
		return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
	if (s >= 60)
		return fmt::format("{}m{:02}s", s / 60, s % 60);
	return fmt::format("{}s", s);
}

} // namespace

ProgressReport::ProgressReport(Output &out, std::string operation, std::string id)
	: out_(out), operation_(std::move(operation)), id_(std::move(id)), tty_(!out.json() && ::isatty(STDOUT_FILENO))
{
	if (out_.json())
		out_.stream();
}

ProgressReport::~ProgressReport()
{
	finish();
}

std::chrono::milliseconds ProgressReport::interval() const
{
	// A bar may move often; a line or an event per second is plenty for a log.
	return std::chrono::milliseconds(tty_ ? 250 : 1000);
}

void ProgressReport::update(uint64_t done, uint64_t total, uint64_t rate)
{
	total = std::max(total, done);
	uint64_t left = total - done;
	bool changed = done != lastDone_ || total != lastTotal_;
	lastDone_ = done;
	lastTotal_ = total;
	unsigned percent = total ? static_cast<unsigned>(done * 100 / total) : 100;
	if (out_.json()) {
		if (!changed)
			return;
		nlohmann::json event{ { "event", "progress" }, { "operation", operation_ }, { "id", id_ },
				      { "done", done },	  { "total", total },	       { "rate", rate } };
		event["eta_seconds"] = rate ? nlohmann::json((left + rate - 1) / rate) : nlohmann::json(nullptr);
		out_.print(event);
		return;
	}
	std::string numbers = fmt::format("{} / {}, {}/s, ETA {}", r3d::formatSize(done), r3d::formatSize(total),
					  r3d::formatSize(rate), eta(left, rate));
	if (tty_) {
		size_t filled = total ? static_cast<size_t>(done * kBarWidth / total) : kBarWidth;
		std::printf("\r\033[K%s %s [%s%s] %3u%% %s", operation_.c_str(), id_.c_str(),
			    std::string(filled, '#').c_str(), std::string(kBarWidth - filled, '.').c_str(), percent,
			    numbers.c_str());
		std::fflush(stdout);
		started_ = true;
		return;
	}
	if (changed)
		std::fprintf(stderr, "r3ctl: %s %s: %u%%, %s\n", operation_.c_str(), id_.c_str(), percent, numbers.c_str());
}

void ProgressReport::finish()
{
	if (finished_)
		return;
	finished_ = true;
	if (tty_ && started_) {
		std::printf("\n");
		std::fflush(stdout);
	}
}

} // namespace r3ctl
