#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl unmount ID|DEVICE\n"
			       "Flushes the mount's device and backend and frees the device.\n";

int unmount(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	std::string path = client.resolveMount(args->positional()[0]);
	auto mount = client.mount(path);
	std::string id = mount->Id();
	std::string device = mount->Device();
	mount->Unmount();
	if (ctx.out.json())
		ctx.out.print({ { "id", id }, { "device", device }, { "unmounted", true } });
	else
		ctx.out.line(fmt::format("unmounted {} (mount {})", device, id));
	return kExitOk;
}

} // namespace

const Command kUnmountCommand{ "unmount", "flush and detach a mount", kUsage, unmount };

} // namespace r3ctl
