#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "long_call.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl unexport ID [--discard-dirty]\n"
			       "Stops an export: no new connections, open ones end after their requests. A\n"
			       "managed export first pushes everything dirty to its remote, with progress, unless\n"
			       "--discard-dirty.\n";

int unexport(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "discard-dirty", false } }, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	std::string path = client.resolveExport(args->positional()[0]);
	auto exp = client.exportAt(path);
	std::string id = exp->Id();
	std::string listen = exp->Listen();
	std::map<std::string, sdbus::Variant> options;
	if (args->has("discard-dirty"))
		options["discard-dirty"] = sdbus::Variant(true);
	bool managed = client.isManaged(path);
	if (managed)
		runPushing(ctx, "unexport", id, path, [&](Client &c) { c.exportAt(path)->StopWithOptions(options); });
	else if (options.empty())
		exp->Stop();
	else
		exp->StopWithOptions(options);
	if (ctx.out.json()) {
		nlohmann::json result{ { "id", id }, { "listen", listen }, { "stopped", true } };
		if (managed)
			result["event"] = "done";
		ctx.out.print(result);
	} else {
		ctx.out.line(fmt::format("stopped export {} on {}", id, listen));
	}
	return kExitOk;
}

} // namespace

const Command kUnexportCommand{ "unexport", "stop an export (a managed one pushes first)", kUsage, unexport };

} // namespace r3ctl
