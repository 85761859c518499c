#include "views.hpp"

#include <algorithm>

#include "exit_codes.hpp"

namespace r3ctl {

namespace {

template <class T>
T get(const PropertyMap &p, const char *name)
{
	auto it = p.find(name);
	return it == p.end() ? T{} : it->second.get<T>();
}

nlohmann::json statistics(const PropertyMap &p)
{
	nlohmann::json out = nlohmann::json::object();
	for (const auto &[key, value] : get<std::map<std::string, uint64_t>>(p, "Statistics"))
		out[key] = value;
	return out;
}

} // namespace

nlohmann::json mountJson(const std::string &path, const PropertyMap &p)
{
	return {
		{ "id", get<std::string>(p, "Id") },
		{ "path", path },
		{ "kind", get<std::string>(p, "Kind") },
		{ "device", get<std::string>(p, "Device") },
		{ "backend_uri", get<std::string>(p, "BackendUri") },
		{ "size", get<uint64_t>(p, "Size") },
		{ "chunk_size", get<uint64_t>(p, "ChunkSize") },
		{ "read_only", get<bool>(p, "ReadOnly") },
		{ "state", get<std::string>(p, "State") },
		{ "statistics", statistics(p) },
	};
}

nlohmann::json regionJson(const std::string &path, const PropertyMap &p)
{
	return {
		{ "id", get<std::string>(p, "Id") },
		{ "path", path },
		{ "backend_uri", get<std::string>(p, "Backend") },
		{ "size", get<uint64_t>(p, "Size") },
		{ "owner_uid", get<uint32_t>(p, "OwnerUid") },
		{ "pid", get<uint32_t>(p, "Pid") },
		{ "faults_served", get<uint64_t>(p, "FaultsServed") },
		{ "bytes_served", get<uint64_t>(p, "BytesServed") },
		{ "dirty_bytes", get<uint64_t>(p, "DirtyBytes") },
		{ "tracking_mode", get<std::string>(p, "TrackingMode") },
	};
}

nlohmann::json syncJson(const std::string &path, const PropertyMap &p)
{
	using Destination = sdbus::Struct<std::string, uint64_t, uint64_t, uint64_t, std::string, std::string>;
	nlohmann::json destinations = nlohmann::json::array();
	std::string role = get<std::string>(p, "Role");
	for (const auto &d : get<std::vector<Destination>>(p, "Destinations")) {
		nlohmann::json j{ { "uri", std::get<0>(d) },   { "acked_generation", std::get<1>(d) }, { "lag", std::get<2>(d) },
				  { "state", std::get<4>(d) }, { "error", std::get<5>(d) } };
		j[role == "hub" ? "pending_chunks" : "bytes_sent"] = std::get<3>(d);
		destinations.push_back(std::move(j));
	}
	return {
		{ "id", get<std::string>(p, "Id") },
		{ "path", path },
		{ "role", role },
		{ "source", get<std::string>(p, "Source") },
		{ "listen", get<std::string>(p, "Listen") },
		{ "interval_ms", get<uint64_t>(p, "IntervalMs") },
		{ "state", get<std::string>(p, "State") },
		{ "last_sync", get<uint64_t>(p, "LastSync") },
		{ "rounds", get<uint64_t>(p, "Rounds") },
		{ "generation", get<uint64_t>(p, "Generation") },
		{ "bytes_sent", get<uint64_t>(p, "BytesSent") },
		{ "chunks_changed", get<uint64_t>(p, "ChunksChanged") },
		{ "source_bytes", get<uint64_t>(p, "SourceBytes") },
		{ "destinations", destinations },
		{ "last_error", get<std::string>(p, "LastError") },
	};
}

nlohmann::json exportJson(const std::string &path, const PropertyMap &p)
{
	return {
		{ "id", get<std::string>(p, "Id") },
		{ "path", path },
		{ "kind", get<std::string>(p, "Kind") },
		{ "listen", get<std::string>(p, "Listen") },
		{ "name", get<std::string>(p, "ExportName") },
		{ "protocol", get<std::string>(p, "Protocol") },
		{ "backend_uri", get<std::string>(p, "BackendUri") },
		{ "size", get<uint64_t>(p, "Size") },
		{ "read_only", get<bool>(p, "ReadOnly") },
		{ "connected_clients", get<uint32_t>(p, "ConnectedClients") },
		{ "statistics", statistics(p) },
	};
}

nlohmann::json managedJson(const PropertyMap &p)
{
	nlohmann::json options = nlohmann::json::object();
	for (const auto &[key, value] : get<std::map<std::string, std::string>>(p, "Options"))
		options[key] = value;
	return {
		{ "state", get<std::string>(p, "State") },
		{ "local_bytes", get<uint64_t>(p, "LocalBytes") },
		{ "dirty_bytes", get<uint64_t>(p, "DirtyBytes") },
		{ "pulled_bytes", get<uint64_t>(p, "PulledBytes") },
		{ "pushed_bytes", get<uint64_t>(p, "PushedBytes") },
		{ "pull_rate", get<uint64_t>(p, "PullRate") },
		{ "push_rate", get<uint64_t>(p, "PushRate") },
		{ "last_error", get<std::string>(p, "LastError") },
		{ "cache_dir", get<std::string>(p, "CacheDir") },
		{ "resumed", get<bool>(p, "Resumed") },
		{ "options", options },
	};
}

std::vector<nlohmann::json> objectsOf(const ManagedObjects &objects, const std::string &interface,
				      nlohmann::json (*view)(const std::string &, const PropertyMap &))
{
	std::vector<nlohmann::json> out;
	for (const auto &[path, interfaces] : objects) {
		auto it = interfaces.find(interface);
		if (it == interfaces.end())
			continue;
		out.push_back(view(path, it->second));
		if (auto m = interfaces.find(org::r3map::Managed1_proxy::INTERFACE_NAME); m != interfaces.end())
			out.back()["managed"] = managedJson(m->second);
	}
	// Paths sort as text ("10" < "2"); ids are numbers.
	std::sort(out.begin(), out.end(), [](const nlohmann::json &a, const nlohmann::json &b) {
		auto id = [](const nlohmann::json &j) { return std::stoull(j["id"].get<std::string>()); };
		return id(a) < id(b);
	});
	return out;
}

int listObjects(Context &ctx, const std::string &interface,
		nlohmann::json (*view)(const std::string &, const PropertyMap &), const std::vector<std::string> &header,
		std::vector<std::string> (*row)(const nlohmann::json &object))
{
	auto list = objectsOf(ctx.client().objects(), interface, view);
	if (ctx.out.json()) {
		ctx.out.print(list);
		return kExitOk;
	}
	std::vector<std::vector<std::string>> rows;
	for (const auto &object : list)
		rows.push_back(row(object));
	ctx.out.table(header, rows);
	return kExitOk;
}

} // namespace r3ctl
