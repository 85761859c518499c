#pragma once

// A command a caller hands the daemon to run at a moment of its choosing (a seeder's
// finalize hook). It runs as that caller, never as the daemon: the caller's uid, primary
// gid and groups, /bin/sh -c, stdin /dev/null, bounded in time.

#include <sys/types.h>

#include <chrono>
#include <string>

#include <r3d/result.hpp>

namespace r3mapd {

class HookCommand
{
public:
	/// Checks the text (not empty, no NUL, at most 4 KiB) and who the caller is.
	static r3d::ResultMsg<HookCommand> create(std::string command, uid_t caller);

	/// Runs it to the end, or kills it after `timeout`. Fails with ECANCELED and the exit
	/// status (or signal) when it does not exit 0, ETIMEDOUT when it was killed.
	r3d::ResultMsg<void> run(std::chrono::milliseconds timeout) const;

	const std::string &command() const { return command_; }

private:
	std::string command_;
	uid_t uid_ = 0;
	gid_t gid_ = 0;
};

} // namespace r3mapd
