#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "args.hpp"
#include "commands.hpp"
#include "progress_report.hpp"
#include "security_flags.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage =
	"usage: r3ctl migrate seed URI|mount:ID|export:ID --listen ADDR [--export ADDR] [--id ID] [--on-finalize CMD | --finalize-signal]\n"
	"                          [--tls-cert F --tls-key F [--tls-ca F]] [--token-file F]\n"
	"       r3ctl migrate pull r3://HOST:PORT/ID[?tls-ca=F&token-file=F...] [--export ADDR]\n"
	"                          [--downtime D] [--max-rounds N] [--rate R] [--finalize auto|manual]\n"
	"       r3ctl migrate finalize|status ID [--wait]\n"
	"       r3ctl migrate cancel ID\n"
	"       r3ctl migrate answer ID yes|no [REASON]\n"
	"       r3ctl migrate ls\n"
	"Live migration through r3mapd. seed makes URI a migration source listening on ADDR\n"
	"(HOST:PORT, loopback unless --tls-cert) and, with --export, serves its writable front over\n"
	"NBD; seed mount:ID or export:ID tracks a live mount's or export's writes instead (it is\n"
	"read-only once a leecher owns the region). pull pulls a seeder into memory and serves the\n"
	"region on a kernel device, or over NBD on --export; its I/O waits until the leecher owns\n"
	"the region. Both\n"
	"print the migration id, the r3 URI (seed), the device or the NBD address. finalize takes\n"
	"ownership (for --finalize manual); cancel ends it. --on-finalize CMD runs (sh -c, as you,\n"
	"at most 30 s) when a leecher finalizes, before the seeder stops writes: pause the app; the\n"
	"handover goes on only if CMD exits 0. --finalize-signal: the seeder's object emits\n"
	"FinalizeRequested instead, and the handover waits (25 s) for the app's AnswerFinalize, or\n"
	"for answer ID yes (no refuses it). With --wait, finalize and status return once the\n"
	"migration is complete (exit 0) or failed (exit 1), with progress of the pull, and print\n"
	"the last status.\n";

constexpr const char *kInterface = org::r3map::Migration1_proxy::INTERFACE_NAME;

template <class T>
T get(const PropertyMap &p, const char *name)
{
	auto it = p.find(name);
	return it == p.end() ? T{} : it->second.get<T>();
}

nlohmann::json migrationJson(const std::string &path, const PropertyMap &p)
{
	nlohmann::json j{
		{ "id", get<std::string>(p, "Id") },
		{ "path", path },
		{ "role", get<std::string>(p, "Role") },
		{ "source", get<std::string>(p, "Source") },
		{ "listen", get<std::string>(p, "Listen") },
		{ "migration_id", get<std::string>(p, "MigrationId") },
		{ "export", get<std::string>(p, "ExportAddress") },
		{ "device", get<std::string>(p, "Device") },
		{ "phase", get<std::string>(p, "Phase") },
		{ "round", get<uint64_t>(p, "Round") },
		{ "region_bytes", get<uint64_t>(p, "RegionBytes") },
		{ "transferred_bytes", get<uint64_t>(p, "TransferredBytes") },
		{ "dirty_bytes", get<uint64_t>(p, "DirtyBytes") },
		{ "predicted_downtime_us", get<int64_t>(p, "PredictedDowntimeUs") },
		{ "measured_downtime_us", get<uint64_t>(p, "MeasuredDowntimeUs") },
		{ "bandwidth", get<uint64_t>(p, "Bandwidth") },
		{ "dirty_rate", get<uint64_t>(p, "DirtyRate") },
		{ "owner", get<bool>(p, "Owner") },
		{ "last_error", get<std::string>(p, "LastError") },
	};
	if (!j["listen"].get<std::string>().empty())
		j["uri"] = fmt::format("r3://{}/{}", j["listen"].get<std::string>(), j["migration_id"].get<std::string>());
	return j;
}

std::string resolve(const std::string &id)
{
	return id.starts_with(kMigrationsPath) ? id : kMigrationsPath + id;
}

nlohmann::json fetch(Context &ctx, const std::string &path)
{
	return migrationJson(path, ctx.client().migration(path)->GetAll(kInterface));
}

int printCreated(Context &ctx, const std::string &path)
{
	auto m = fetch(ctx, path);
	if (ctx.out.json()) {
		ctx.out.print(m);
		return kExitOk;
	}
	ctx.out.line("migration " + m["id"].get<std::string>());
	if (m.contains("uri"))
		ctx.out.line(m["uri"].get<std::string>());
	if (!m["export"].get<std::string>().empty())
		ctx.out.line("export " + m["export"].get<std::string>());
	if (!m["device"].get<std::string>().empty())
		ctx.out.line("device " + m["device"].get<std::string>());
	return kExitOk;
}

int seed(Context &ctx, const std::vector<std::string> &argv)
{
	std::vector<Args::Option> flags{ { "listen", true },
					 { "export", true },
					 { "id", true },
					 { "on-finalize", true },
					 { "finalize-signal", false } };
	for (const auto &f : securityFlags())
		flags.push_back(f);
	auto args = Args::parse(argv, flags, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto listen = args->value("listen");
	if (!listen)
		return ctx.out.usage("--listen ADDR is required", kUsage);
	std::map<std::string, sdbus::Variant> options;
	if (auto e = args->value("export"))
		options["export_listen"] = sdbus::Variant(*e);
	if (auto id = args->value("id"))
		options["id"] = sdbus::Variant(*id);
	if (auto hook = args->value("on-finalize"))
		options["on_finalize"] = sdbus::Variant(*hook);
	if (args->has("finalize-signal"))
		options["finalize_signal"] = sdbus::Variant(true);
	addSecurityOptions(*args, options);
	return printCreated(ctx, ctx.client().manager().Seed(args->positional()[0], *listen, options));
}

int pull(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv,
				{ { "export", true }, { "downtime", true }, { "max-rounds", true }, { "rate", true },
				  { "finalize", true } },
				1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	std::string exportListen = args->value("export").value_or(""); // none: a kernel device
	std::map<std::string, sdbus::Variant> options;
	// The daemon checks the values: one place says what is wrong with them.
	if (auto d = args->value("downtime"))
		options["downtime"] = sdbus::Variant(*d);
	if (auto n = args->value("max-rounds")) {
		char *end = nullptr;
		unsigned long v = std::strtoul(n->c_str(), &end, 10);
		if (n->empty() || *end != '\0')
			return ctx.out.usage(fmt::format("--max-rounds '{}': expected a number", *n), kUsage);
		options["max_rounds"] = sdbus::Variant(static_cast<uint64_t>(v));
	}
	if (auto r = args->value("rate"))
		options["rate"] = sdbus::Variant(*r);
	if (auto f = args->value("finalize"))
		options["finalize"] = sdbus::Variant(*f);
	return printCreated(ctx, ctx.longClient().manager().Pull(args->positional()[0], exportListen, options));
}

void printStatus(Context &ctx, const nlohmann::json &m)
{
	if (ctx.out.json()) {
		ctx.out.print(m);
		return;
	}
	for (const auto &[key, value] : m.items())
		ctx.out.line(fmt::format("{}: {}", key, value.is_string() ? value.get<std::string>() : value.dump()));
}

bool ended(const nlohmann::json &m)
{
	return m["phase"] == "complete" || m["phase"] == "failed";
}

// Until the migration at `path` is complete or failed, with the pull's bytes as progress;
// then its last status.
int waitEnded(Context &ctx, const std::string &path)
{
	// Woken by PhaseChanged (the proxy's match rule lets it reach us); the status is also
	// read every kPoll for the progress, and in case a signal does not come.
	constexpr std::chrono::milliseconds kPoll{ 250 };
	auto signals = ctx.client().migration(path);
	auto m = fetch(ctx, path);
	{
		ProgressReport report(ctx.out, "migrate", m["id"].get<std::string>());
		auto shown = std::chrono::steady_clock::time_point{};
		while (!ended(m)) {
			if (auto now = std::chrono::steady_clock::now(); now - shown >= report.interval()) {
				report.update(m["transferred_bytes"].get<uint64_t>(), m["region_bytes"].get<uint64_t>(),
					      m["bandwidth"].get<uint64_t>());
				shown = now;
			}
			ctx.client().dispatch(std::min<std::chrono::milliseconds>(
				kPoll, std::chrono::duration_cast<std::chrono::milliseconds>(report.interval())));
			m = fetch(ctx, path);
		}
	}
	printStatus(ctx, m);
	if (m["phase"] == "failed") {
		if (!ctx.out.json())
			std::fprintf(stderr, "r3ctl: migration %s failed: %s\n", m["id"].get<std::string>().c_str(),
				     m["last_error"].get<std::string>().c_str());
		return kExitFailed;
	}
	return kExitOk;
}

int onOne(Context &ctx, const std::string &sub, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "wait", false } }, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	bool wait = args->has("wait");
	if (wait && sub == "cancel")
		return ctx.out.usage("--wait goes with finalize and status", kUsage);
	auto path = resolve(args->positional()[0]);
	if (sub == "status") {
		if (wait)
			return waitEnded(ctx, path);
		printStatus(ctx, fetch(ctx, path));
		return kExitOk;
	}
	auto proxy = ctx.client().migration(path);
	if (sub == "finalize")
		proxy->Finalize();
	else
		proxy->Cancel();
	return wait ? waitEnded(ctx, path) : kExitOk;
}

int answer(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 2, 3);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	const auto &words = args->positional();
	if (words[1] != "yes" && words[1] != "no")
		return ctx.out.usage(fmt::format("answer '{}': expected yes or no", words[1]), kUsage);
	ctx.client().migration(resolve(words[0]))->AnswerFinalize(words[1] == "yes", words.size() > 2 ? words[2] : "");
	return kExitOk;
}

int list(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 0, 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	nlohmann::json all = nlohmann::json::array();
	std::vector<std::vector<std::string>> rows;
	for (const auto &[path, interfaces] : ctx.client().objects()) {
		auto it = interfaces.find(kInterface);
		if (it == interfaces.end())
			continue;
		// The progress properties are not in GetManagedObjects' snapshot: ask each.
		auto m = fetch(ctx, path);
		rows.push_back({ m["id"].get<std::string>(), m["role"].get<std::string>(), m["phase"].get<std::string>(),
				 m.value("uri", std::string()), m["export"].get<std::string>(),
				 m["source"].get<std::string>() });
		all.push_back(std::move(m));
	}
	if (ctx.out.json())
		ctx.out.print(all);
	else
		ctx.out.table({ "ID", "ROLE", "PHASE", "URI", "EXPORT", "SOURCE" }, rows);
	return kExitOk;
}

int migrate(Context &ctx, const std::vector<std::string> &argv)
{
	if (argv.empty())
		return ctx.out.usage("missing the subcommand (seed, pull, finalize, cancel, status, answer, ls)", kUsage);
	std::string sub = argv[0];
	std::vector<std::string> rest(argv.begin() + 1, argv.end());
	if (sub == "seed")
		return seed(ctx, rest);
	if (sub == "pull")
		return pull(ctx, rest);
	if (sub == "finalize" || sub == "cancel" || sub == "status")
		return onOne(ctx, sub, rest);
	if (sub == "ls")
		return list(ctx, rest);
	if (sub == "answer")
		return answer(ctx, rest);
	return ctx.out.usage(fmt::format("unknown subcommand '{}'", sub), kUsage);
}

} // namespace

const Command kMigrateCommand{ "migrate", "live-migrate a backend: seed, pull, finalize, status", kUsage, migrate };

} // namespace r3ctl
