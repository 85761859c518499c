#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "long_call.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl sync ID|DEVICE\n"
			       "       r3ctl sync --export ID\n"
			       "Pushes everything dirty of a managed mount (or export) to its remote now, with\n"
			       "progress, and returns once the remote has it.\n";

int sync(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "export", false } }, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	bool isExport = args->has("export");
	std::string path = isExport ? client.resolveExport(args->positional()[0])
				    : client.resolveMount(args->positional()[0]);
	std::string what = isExport ? "export" : "mount";
	std::string id = path.substr(path.rfind('/') + 1);
	if (!client.isManaged(path))
		throw sdbus::Error("org.r3map.Error.NotSupported",
				   fmt::format("{} {} is not managed: it has nothing to sync", what, id));
	runPushing(ctx, "sync", id, path, [&path](Client &c) { c.managed(path)->Sync(); });
	if (ctx.out.json())
		ctx.out.print({ { "event", "done" }, { "operation", "sync" }, { "id", id }, { "synced", true } });
	else
		ctx.out.line(fmt::format("synced {} {}", what, id));
	return kExitOk;
}

} // namespace

const Command kSyncCommand{ "sync", "push a managed mount or export to its remote", kUsage, sync };

} // namespace r3ctl
