#include <cstdio>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl ls [--regions]\n"
			       "Lists the mounts, then the memory regions apps map (if any);\n"
			       "--regions: only the regions (with --json: an array of them).\n";

std::vector<std::string> regionRow(const nlohmann::json &r)
{
	return { r["id"].get<std::string>(),
		 r3d::formatSize(r["size"].get<uint64_t>()),
		 std::to_string(r["pid"].get<uint32_t>()),
		 std::to_string(r["owner_uid"].get<uint32_t>()),
		 std::to_string(r["faults_served"].get<uint64_t>()),
		 r3d::formatSize(r["bytes_served"].get<uint64_t>()),
		 r["tracking_mode"].get<std::string>(),
		 r3d::formatSize(r["dirty_bytes"].get<uint64_t>()),
		 r["backend_uri"].get<std::string>() };
}

const std::vector<std::string> kRegionHeader{ "REGION", "SIZE", "PID", "UID", "FAULTS", "SERVED", "TRACKING", "DIRTY",
					      "BACKEND" };

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
	auto args = Args::parse(argv, { { "regions", false } }, 0, 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (args->has("regions"))
		return listObjects(ctx, kRegionInterface, regionJson, kRegionHeader, regionRow);
	int rc = listObjects(ctx, org::r3map::Mount1_proxy::INTERFACE_NAME, mountJson,
			     { "ID", "DEVICE", "STATE", "SIZE", "CHUNK", "MODE", "BACKEND" }, row);
	// The JSON stays an array of mounts; the table gets the regions below it.
	if (rc != kExitOk || ctx.out.json())
		return rc;
	auto regions = objectsOf(ctx.client().objects(), kRegionInterface, regionJson);
	if (regions.empty())
		return rc;
	std::vector<std::vector<std::string>> rows;
	for (const auto &r : regions)
		rows.push_back(regionRow(r));
	std::printf("\n");
	ctx.out.table(kRegionHeader, rows);
	return rc;
}

} // namespace

const Command kLsCommand{ "ls", "list mounts", kUsage, ls };

} // namespace r3ctl
