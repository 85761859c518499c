#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "version.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl version\nPrints the versions of r3ctl and of the running r3mapd.\n";

int version(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 0, 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	std::string daemon = ctx.client().manager().GetVersion();
	if (ctx.out.json())
		ctx.out.print({ { "r3ctl", r3map::kVersion }, { "r3mapd", daemon } });
	else
		ctx.out.line(fmt::format("r3ctl {}\nr3mapd {}", r3map::kVersion, daemon));
	return kExitOk;
}

} // namespace

const Command kVersionCommand{ "version", "show r3ctl's and r3mapd's versions", kUsage, version };

} // namespace r3ctl
