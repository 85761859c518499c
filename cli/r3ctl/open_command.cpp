#include "args.hpp"
#include "commands.hpp"
#include "fd_runner.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl open ID|DEVICE [--read-only] -- PROGRAM [ARGS...]\n"
			       "Runs PROGRAM with a descriptor of an existing mount's device, opened by r3mapd\n"
			       "(its number in R3MAP_FD): for callers in group r3map without access to /dev/nbdN.\n";

int open(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "read-only", false } }, 1, 1, true);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (args->command().empty())
		return ctx.out.usage("a program to run is missing after '--'", kUsage);
	std::string path = ctx.client().resolveMount(args->positional()[0]);
	return openAndRun(ctx, path, args->has("read-only"), args->command());
}

} // namespace

const Command kOpenCommand{ "open", "run a program with a mount's device descriptor", kUsage, open };

} // namespace r3ctl
