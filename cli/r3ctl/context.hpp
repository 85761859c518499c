#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "client.hpp"
#include "output.hpp"

namespace r3ctl {

/// What every command gets: the output mode and a connection made on first use.
class Context
{
public:
	/// `timeoutGiven`: --timeout was on the command line, so it bounds long calls too.
	Context(bool json, std::chrono::seconds timeout, bool timeoutGiven = false)
		: out(json), timeout_(timeout), timeoutGiven_(timeoutGiven)
	{
	}

	Output out;
	/// Connects on first use; throws sdbus::Error when there is no bus.
	Client &client();
	/// A second connection for one call that may take long (Sync, a managed Unmount, a
	/// Mount with pull-first), made while client() polls its progress: no timeout unless
	/// --timeout was given. Connects on first use, like client().
	Client &longClient();
	/// What bounds a long wait: --timeout when it was given, else nothing.
	std::optional<std::chrono::seconds> longTimeout() const
	{
		return timeoutGiven_ ? std::optional(timeout_) : std::nullopt;
	}

private:
	std::chrono::seconds timeout_;
	bool timeoutGiven_;
	std::unique_ptr<Client> client_;
	std::unique_ptr<Client> longClient_;
};

/// One r3ctl command: one source file each.
struct Command {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(Context &ctx, const std::vector<std::string> &args);
};

} // namespace r3ctl
