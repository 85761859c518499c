#pragma once

#include <chrono>
#include <memory>

#include "client.hpp"
#include "output.hpp"

namespace r3ctl {

/// What every command gets: the output mode and a connection made on first use.
class Context
{
public:
	Context(bool json, std::chrono::seconds timeout) : out(json), timeout_(timeout) {}

	Output out;
	/// Connects on first use; throws sdbus::Error when there is no bus.
	Client &client();

private:
	std::chrono::seconds timeout_;
	std::unique_ptr<Client> client_;
};

/// One r3ctl command: one source file each.
struct Command {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(Context &ctx, const std::vector<std::string> &args);
};

} // namespace r3ctl
