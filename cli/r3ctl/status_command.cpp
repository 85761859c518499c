#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl status ID|DEVICE\nShows one mount with its statistics.\n";

int status(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	std::string path = client.resolveMount(args->positional()[0]);
	auto m = mountJson(path, client.mount(path)->GetAll(org::r3map::Mount1_proxy::INTERFACE_NAME));
	if (ctx.out.json()) {
		ctx.out.print(m);
		return kExitOk;
	}
	std::vector<std::vector<std::string>> rows = {
		{ "id", m["id"].get<std::string>() },
		{ "device", m["device"].get<std::string>() },
		{ "state", m["state"].get<std::string>() },
		{ "backend", m["backend_uri"].get<std::string>() },
		{ "size", r3d::formatSize(m["size"].get<uint64_t>()) },
		{ "chunk size", r3d::formatSize(m["chunk_size"].get<uint64_t>()) },
		{ "mode", m["read_only"].get<bool>() ? "read-only" : "read-write" },
	};
	for (const auto &[key, value] : m["statistics"].items())
		rows.push_back({ key, std::to_string(value.get<uint64_t>()) });
	ctx.out.table({ "FIELD", "VALUE" }, rows);
	return kExitOk;
}

} // namespace

const Command kStatusCommand{ "status", "show one mount and its statistics", kUsage, status };

} // namespace r3ctl
