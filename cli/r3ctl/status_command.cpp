#include <fmt/format.h>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl status ID|DEVICE\n"
			       "       r3ctl status --export ID\n"
			       "       r3ctl status --region ID\n"
			       "       r3ctl status --sync ID\n"
			       "Shows one mount (or export) with its statistics; a managed one with how much is\n"
			       "local and dirty, its transfer rates and its sync state.\n";

std::string rate(uint64_t bytesPerSecond)
{
	return r3d::formatSize(bytesPerSecond) + "/s";
}

void addManagedRows(std::vector<std::vector<std::string>> &rows, const nlohmann::json &m, uint64_t size)
{
	uint64_t local = m["local_bytes"].get<uint64_t>();
	unsigned percent = size ? static_cast<unsigned>(local * 100 / size) : 100;
	std::string cache = m["cache_dir"].get<std::string>();
	rows.push_back({ "sync state", m["state"].get<std::string>() });
	rows.push_back({ "local", fmt::format("{} of {} ({}%)", r3d::formatSize(local), r3d::formatSize(size), percent) });
	rows.push_back({ "dirty", r3d::formatSize(m["dirty_bytes"].get<uint64_t>()) });
	rows.push_back({ "pulled", r3d::formatSize(m["pulled_bytes"].get<uint64_t>()) });
	rows.push_back({ "pushed", r3d::formatSize(m["pushed_bytes"].get<uint64_t>()) });
	rows.push_back({ "pull rate", rate(m["pull_rate"].get<uint64_t>()) });
	rows.push_back({ "push rate", rate(m["push_rate"].get<uint64_t>()) });
	if (!m["last_error"].get<std::string>().empty())
		rows.push_back({ "last error", m["last_error"].get<std::string>() });
	rows.push_back({ "cache", cache.empty() ? "memory" : cache });
	rows.push_back({ "resumed", m["resumed"].get<bool>() ? "yes" : "no" });
	for (const auto &[key, value] : m["options"].items())
		rows.push_back({ "option " + key, value.get<std::string>() });
}

// A region has no proxy of its own here: its properties come from GetManagedObjects.
int regionStatus(Context &ctx, const std::string &id)
{
	std::string path = id.rfind('/', 0) == 0 ? id : kRegionsPath + id;
	auto objects = ctx.client().objects();
	auto it = objects.find(sdbus::ObjectPath(path));
	if (it == objects.end() || !it->second.count(kRegionInterface))
		throw sdbus::Error("org.r3map.Error.NotFound", fmt::format("no region {}", id));
	auto r = regionJson(path, it->second.at(kRegionInterface));
	if (ctx.out.json()) {
		ctx.out.print(r);
		return kExitOk;
	}
	ctx.out.table({ "FIELD", "VALUE" },
		      { { "id", r["id"].get<std::string>() },
			{ "backend", r["backend_uri"].get<std::string>() },
			{ "size", r3d::formatSize(r["size"].get<uint64_t>()) },
			{ "pid", std::to_string(r["pid"].get<uint32_t>()) },
			{ "owner uid", std::to_string(r["owner_uid"].get<uint32_t>()) },
			{ "faults served", std::to_string(r["faults_served"].get<uint64_t>()) },
			{ "bytes served", r3d::formatSize(r["bytes_served"].get<uint64_t>()) },
			{ "dirty", r3d::formatSize(r["dirty_bytes"].get<uint64_t>()) },
			{ "tracking", r["tracking_mode"].get<std::string>() } });
	return kExitOk;
}

int status(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "export", false }, { "region", false }, { "sync", false } }, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (args->has("sync")) {
		// The same view as r3ctl sync status ID.
		std::vector<std::string> forward{ "status", args->positional()[0] };
		return kSyncCommand.run(ctx, forward);
	}
	if (args->has("region"))
		return regionStatus(ctx, args->positional()[0]);
	auto &client = ctx.client();
	bool isExport = args->has("export");
	std::string path = isExport ? client.resolveExport(args->positional()[0])
				    : client.resolveMount(args->positional()[0]);
	auto m = isExport ? exportJson(path, client.exportAt(path)->GetAll(org::r3map::Export1_proxy::INTERFACE_NAME))
			  : mountJson(path, client.mount(path)->GetAll(org::r3map::Mount1_proxy::INTERFACE_NAME));
	if (client.isManaged(path))
		m["managed"] = managedJson(client.managed(path)->GetAll(org::r3map::Managed1_proxy::INTERFACE_NAME));
	if (ctx.out.json()) {
		ctx.out.print(m);
		return kExitOk;
	}
	std::vector<std::vector<std::string>> rows;
	rows.push_back({ "id", m["id"].get<std::string>() });
	rows.push_back({ "kind", m["kind"].get<std::string>() });
	if (isExport) {
		rows.push_back({ "listen", m["listen"].get<std::string>() });
		rows.push_back({ "protocol", m["protocol"].get<std::string>() });
		rows.push_back({ "name", m["name"].get<std::string>() });
		rows.push_back({ "clients", std::to_string(m["connected_clients"].get<uint32_t>()) });
	} else {
		rows.push_back({ "device", m["device"].get<std::string>() });
		rows.push_back({ "state", m["state"].get<std::string>() });
	}
	rows.push_back({ "backend", m["backend_uri"].get<std::string>() });
	rows.push_back({ "size", r3d::formatSize(m["size"].get<uint64_t>()) });
	if (!isExport)
		rows.push_back({ "chunk size", r3d::formatSize(m["chunk_size"].get<uint64_t>()) });
	rows.push_back({ "mode", m["read_only"].get<bool>() ? "read-only" : "read-write" });
	if (m.contains("managed"))
		addManagedRows(rows, m["managed"], m["size"].get<uint64_t>());
	for (const auto &[key, value] : m["statistics"].items())
		rows.push_back({ key, std::to_string(value.get<uint64_t>()) });
	ctx.out.table({ "FIELD", "VALUE" }, rows);
	return kExitOk;
}

} // namespace

const Command kStatusCommand{ "status", "show one mount, export, memory region or push sync", kUsage, status };

} // namespace r3ctl
