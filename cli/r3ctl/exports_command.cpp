#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl exports\nLists the exports.\n";

std::vector<std::string> row(const nlohmann::json &e)
{
	return { e["id"].get<std::string>(),
		 e["listen"].get<std::string>(),
		 e["name"].get<std::string>(),
		 r3d::formatSize(e["size"].get<uint64_t>()),
		 e["read_only"].get<bool>() ? "ro" : "rw",
		 std::to_string(e["connected_clients"].get<uint32_t>()),
		 e["backend_uri"].get<std::string>() };
}

int exports(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 0, 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	return listObjects(ctx, org::r3map::Export1_proxy::INTERFACE_NAME, exportJson,
			   { "ID", "LISTEN", "NAME", "SIZE", "MODE", "CLIENTS", "BACKEND" }, row);
}

} // namespace

const Command kExportsCommand{ "exports", "list exports", kUsage, exports };

} // namespace r3ctl
