#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl unexport ID\n"
			       "Stops an export: no new connections, open ones end after their requests.\n";

int unexport(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	auto exp = client.exportAt(client.resolveExport(args->positional()[0]));
	std::string id = exp->Id();
	std::string listen = exp->Listen();
	exp->Stop();
	if (ctx.out.json())
		ctx.out.print({ { "id", id }, { "listen", listen }, { "stopped", true } });
	else
		ctx.out.line(fmt::format("stopped export {} on {}", id, listen));
	return kExitOk;
}

} // namespace

const Command kUnexportCommand{ "unexport", "stop an export", kUsage, unexport };

} // namespace r3ctl
