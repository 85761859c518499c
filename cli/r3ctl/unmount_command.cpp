#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "long_call.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl unmount ID|DEVICE [--discard-dirty]\n"
			       "Flushes the mount's device and backend and frees the device. A managed mount\n"
			       "then pushes everything dirty to its remote, with progress, unless --discard-dirty\n"
			       "(what is dirty stays in the cache directory's journal; a memory cache loses it).\n";

int unmount(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "discard-dirty", false } }, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	std::string path = client.resolveMount(args->positional()[0]);
	auto mount = client.mount(path);
	std::string id = mount->Id();
	std::string device = mount->Device();
	std::map<std::string, sdbus::Variant> options;
	if (args->has("discard-dirty"))
		options["discard-dirty"] = sdbus::Variant(true);
	bool managed = client.isManaged(path);
	if (managed)
		runPushing(ctx, "unmount", id, path, [&](Client &c) { c.mount(path)->UnmountWithOptions(options); });
	else if (options.empty())
		mount->Unmount();
	else
		mount->UnmountWithOptions(options);
	if (ctx.out.json()) {
		nlohmann::json result{ { "id", id }, { "device", device }, { "unmounted", true } };
		if (managed)
			result["event"] = "done";
		ctx.out.print(result);
	} else {
		ctx.out.line(fmt::format("unmounted {} (mount {})", device, id));
	}
	return kExitOk;
}

} // namespace

const Command kUnmountCommand{ "unmount", "flush and detach a mount (a managed one pushes first)", kUsage, unmount };

} // namespace r3ctl
