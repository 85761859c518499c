#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl ls\nLists the mounts.\n";

std::vector<std::string> row(const nlohmann::json &m)
{
	return { m["id"].get<std::string>(),
		 m["device"].get<std::string>(),
		 m["state"].get<std::string>(),
		 r3d::formatSize(m["size"].get<uint64_t>()),
		 r3d::formatSize(m["chunk_size"].get<uint64_t>()),
		 m["read_only"].get<bool>() ? "ro" : "rw",
		 m["backend_uri"].get<std::string>() };
}

int ls(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 0, 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	return listObjects(ctx, org::r3map::Mount1_proxy::INTERFACE_NAME, mountJson,
			   { "ID", "DEVICE", "STATE", "SIZE", "CHUNK", "MODE", "BACKEND" }, row);
}

} // namespace

const Command kLsCommand{ "ls", "list mounts", kUsage, ls };

} // namespace r3ctl
