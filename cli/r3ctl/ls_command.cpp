#include <cstdio>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl ls [--regions|--syncs]\n"
			       "Lists the mounts, then the memory regions apps map and the push syncs (if any);\n"
			       "--regions, --syncs: only those (with --json: an array of them).\n";

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

std::vector<std::string> syncRow(const nlohmann::json &s)
{
	std::string to = s["role"] == "push" ? "" : s["listen"].get<std::string>();
	for (const auto &d : s["destinations"])
		to += (to.empty() ? "" : " ") + d["uri"].get<std::string>();
	return { s["id"].get<std::string>(),
		 s["role"].get<std::string>(),
		 s["state"].get<std::string>(),
		 std::to_string(s["generation"].get<uint64_t>()),
		 r3d::formatSize(s["bytes_sent"].get<uint64_t>()),
		 s["source"].get<std::string>(),
		 to };
}

const std::vector<std::string> kSyncHeader{ "SYNC", "ROLE", "STATE", "GEN", "BYTES", "SOURCE", "TO" };

// Syncs with their progress: GetManagedObjects' snapshot does not carry it.
std::vector<nlohmann::json> syncs(Context &ctx)
{
	std::vector<nlohmann::json> out;
	for (const auto &path : ctx.client().manager().ListSyncs())
		out.push_back(syncJson(path, ctx.client().sync(path)->GetAll(org::r3map::Sync1_proxy::INTERFACE_NAME)));
	return out;
}

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
	auto args = Args::parse(argv, { { "regions", false }, { "syncs", false } }, 0, 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (args->has("syncs")) {
		auto all = syncs(ctx);
		if (ctx.out.json()) {
			ctx.out.print(nlohmann::json(all));
			return kExitOk;
		}
		std::vector<std::vector<std::string>> rows;
		for (const auto &s : all)
			rows.push_back(syncRow(s));
		ctx.out.table(kSyncHeader, rows);
		return kExitOk;
	}
	if (args->has("regions"))
		return listObjects(ctx, kRegionInterface, regionJson, kRegionHeader, regionRow);
	int rc = listObjects(ctx, org::r3map::Mount1_proxy::INTERFACE_NAME, mountJson,
			     { "ID", "DEVICE", "STATE", "SIZE", "CHUNK", "MODE", "BACKEND" }, row);
	// The JSON stays an array of mounts; the table gets the regions below it.
	if (rc != kExitOk || ctx.out.json())
		return rc;
	auto regions = objectsOf(ctx.client().objects(), kRegionInterface, regionJson);
	if (!regions.empty()) {
		std::vector<std::vector<std::string>> rows;
		for (const auto &r : regions)
			rows.push_back(regionRow(r));
		std::printf("\n");
		ctx.out.table(kRegionHeader, rows);
	}
	auto all = syncs(ctx);
	if (!all.empty()) {
		std::vector<std::vector<std::string>> rows;
		for (const auto &s : all)
			rows.push_back(syncRow(s));
		std::printf("\n");
		ctx.out.table(kSyncHeader, rows);
	}
	return rc;
}

} // namespace

const Command kLsCommand{ "ls", "list mounts, memory regions and push syncs", kUsage, ls };

} // namespace r3ctl
