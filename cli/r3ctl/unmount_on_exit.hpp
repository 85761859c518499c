#pragma once

#include <functional>
#include <string>

namespace r3ctl {

/// The Unmount that `mount --fd --rm` promises, however the run ends: the program's exit,
/// OpenFd refused, the descriptor not kept, an exception on the way out.
class UnmountOnExit
{
public:
	/// `unmount` may throw sdbus::Error; `what` (the mount's object path) names it in
	/// messages. Disarmed, nothing happens.
	UnmountOnExit(std::function<void()> unmount, std::string what, bool armed);
	/// Unmounts if finish() did not; reports a failure on stderr.
	~UnmountOnExit();
	UnmountOnExit(const UnmountOnExit &) = delete;
	UnmountOnExit &operator=(const UnmountOnExit &) = delete;

	/// Unmounts now and returns the exit status to use: `status` (the program's) unless it
	/// was 0 and the unmount failed, then the unmount's. A failure is reported on stderr,
	/// so a program's own failure stays visible in its status.
	int finish(int status);

private:
	/// 0, or the exit code of the failure (already reported).
	int unmount() noexcept;

	std::function<void()> unmount_;
	std::string what_;
	bool armed_;
};

} // namespace r3ctl
