#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "output.hpp"

namespace r3ctl {

/// How r3ctl shows a long operation (a sync, a managed unmount, --wait-local): a bar on
/// stdout when it is a terminal; plain lines on stderr otherwise, so stdout keeps only the
/// result for scripts; with --json one object per event on stdout:
///   {"event":"progress","operation":"sync","id":"1","done":N,"total":N,"rate":N,"eta_seconds":N}
class ProgressReport
{
public:
	/// `operation` names it ("sync", "unmount", "pull"); `id` the mount or export.
	ProgressReport(Output &out, std::string operation, std::string id);
	~ProgressReport();
	ProgressReport(const ProgressReport &) = delete;
	ProgressReport &operator=(const ProgressReport &) = delete;

	/// How often update() wants a sample.
	std::chrono::milliseconds interval() const;
	/// `done` of `total` bytes, `rate` bytes/s (0: not known). Shown when it changed.
	void update(uint64_t done, uint64_t total, uint64_t rate);
	/// Ends the bar's line; nothing else.
	void finish();

private:
	Output &out_;
	std::string operation_;
	std::string id_;
	bool tty_;
	bool started_ = false;
	bool finished_ = false;
	uint64_t lastDone_ = UINT64_MAX, lastTotal_ = UINT64_MAX;
};

} // namespace r3ctl
