#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "version.hpp"

namespace r3ctl {

namespace {

const Command *const kCommands[] = { &kMountCommand,   &kOpenCommand,	  &kUnmountCommand,  &kLsCommand,
				     &kStatusCommand,  &kSyncCommand,	  &kExportCommand,   &kExportsCommand,
				     &kUnexportCommand, &kLogLevelCommand, &kVersionCommand, &kMapCommand, &kMigrateCommand };

std::string usage()
{
	std::string text = "usage: r3ctl [--json] [--timeout SECONDS] COMMAND [ARGS...]\n"
			   "Talks to r3mapd on the system bus. Commands:\n";
	for (const Command *c : kCommands)
		text += fmt::format("  {:<10} {}\n", c->name, c->summary);
	text += "r3ctl COMMAND --help shows a command's usage; see r3ctl(1).\n";
	return text;
}

} // namespace

int run(int argc, char **argv)
{
	std::vector<std::string> args(argv + 1, argv + argc);
	bool json = false;
	long timeout = 120;
	bool timeoutGiven = false;
	// --json is accepted anywhere before a "--"; the rest of the globals before the command.
	std::vector<std::string> rest;
	bool passthrough = false;
	for (size_t i = 0; i < args.size(); ++i) {
		const std::string &a = args[i];
		if (passthrough || a == "--") {
			passthrough = true;
			rest.push_back(a);
		} else if (a == "--json") {
			json = true;
		} else if (rest.empty() && (a == "--timeout" || a.starts_with("--timeout="))) {
			std::string value = a == "--timeout" ? (i + 1 < args.size() ? args[++i] : "") : a.substr(10);
			auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), timeout);
			if (ec != std::errc() || end != value.data() + value.size() || timeout <= 0) {
				std::fprintf(stderr, "r3ctl: --timeout needs a number of seconds\n%s", usage().c_str());
				return kExitUsage;
			}
			timeoutGiven = true;
		} else if (rest.empty() && (a == "--help" || a == "-h" || a == "help")) {
			std::fputs(usage().c_str(), stdout);
			return kExitOk;
		} else if (rest.empty() && a == "--version") {
			std::printf("r3ctl %s\n", r3map::kVersion);
			return kExitOk;
		} else {
			rest.push_back(a);
		}
	}
	Context ctx(json, std::chrono::seconds(timeout), timeoutGiven);
	if (rest.empty())
		return ctx.out.usage("no command given", usage().c_str());

	const Command *command = nullptr;
	for (const Command *c : kCommands)
		if (rest[0] == c->name)
			command = c;
	if (!command)
		return ctx.out.usage(fmt::format("unknown command '{}'", rest[0]), usage().c_str());
	std::vector<std::string> commandArgs(rest.begin() + 1, rest.end());
	for (const auto &a : commandArgs) {
		if (a == "--")
			break;
		if (a == "--help" || a == "-h") {
			std::fputs(command->usage, stdout);
			return kExitOk;
		}
	}
	try {
		return command->run(ctx, commandArgs);
	} catch (const sdbus::Error &e) {
		return ctx.out.failure(describe(e));
	}
}

} // namespace r3ctl
