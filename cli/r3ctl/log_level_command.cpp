#include "args.hpp"
#include "commands.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl log-level [LEVEL]\n"
			       "Shows or sets r3mapd's log level: trace, debug, info, warning, error, critical, off.\n";

int logLevel(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 0, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &manager = ctx.client().manager();
	if (!args->positional().empty())
		manager.SetLogLevel(args->positional()[0]);
	std::string level = manager.LogLevel();
	if (ctx.out.json())
		ctx.out.print({ { "log_level", level } });
	else
		ctx.out.line(level);
	return kExitOk;
}

} // namespace

const Command kLogLevelCommand{ "log-level", "show or set the daemon's log level", kUsage, logLevel };

} // namespace r3ctl
