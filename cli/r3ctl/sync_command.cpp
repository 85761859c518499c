#include <atomic>
#include <exception>
#include <thread>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "long_call.hpp"
#include "progress_report.hpp"
#include "security_flags.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage =
	"usage: r3ctl sync ID|DEVICE\n"
	"       r3ctl sync --export ID\n"
	"       r3ctl sync start SRC DEST... [--interval T] [--hub ADDR] [--chunk-size S] [--compress]\n"
	"                        [--no-wait]\n"
	"       r3ctl sync serve --dir DIR --listen ADDR [--apply journal|rename] [--verify]\n"
	"                        [--tls-cert F --tls-key F [--tls-ca F]] [--token-file F]\n"
	"       r3ctl sync hub --listen ADDR --cache DIR DEST... [--compress]\n"
	"                      [--tls-cert F --tls-key F [--tls-ca F]] [--token-file F]\n"
	"       r3ctl sync now ID\n"
	"       r3ctl sync status [ID]\n"
	"       r3ctl sync stop ID\n"
	"With a mount (ID or DEVICE) or --export: pushes everything dirty of a managed mount (or\n"
	"export) to its remote now, with progress, and returns once the remote has it.\n"
	"start, serve, hub, now, status and stop are push sync through r3mapd: start pushes SRC\n"
	"(a file, a block device or a mount ID) to each DEST, r3://HOST:PORT[/NAME] with\n"
	"?tls-ca=F&token-file=F..., in rounds: the first at once (waited for, with progress,\n"
	"unless --no-wait), then every --interval (without it: on 'sync now'); --hub pushes to a\n"
	"hub as one more destination; --compress sends chunks that shrink zstd-compressed. serve receives pushes into copies in DIR; hub receives\n"
	"into DIR and fans each copy out to every DEST. start, serve and hub print the sync id;\n"
	"status without ID lists every sync.\n";

constexpr const char *kInterface = org::r3map::Sync1_proxy::INTERFACE_NAME;

// The push of a managed mount or export to its remote (the form r3ctl sync had first).
int syncManaged(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "export", false } }, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto &client = ctx.client();
	bool isExport = args->has("export");
	std::string path = isExport ? client.resolveExport(args->positional()[0])
				    : client.resolveMount(args->positional()[0]);
	std::string what = isExport ? "export" : "mount";
	std::string id = path.substr(path.rfind('/') + 1);
	if (!client.isManaged(path))
		throw sdbus::Error("org.r3map.Error.NotSupported",
				   fmt::format("{} {} is not managed: it has nothing to sync", what, id));
	runPushing(ctx, "sync", id, path, [&path](Client &c) { c.managed(path)->Sync(); });
	if (ctx.out.json())
		ctx.out.print({ { "event", "done" }, { "operation", "sync" }, { "id", id }, { "synced", true } });
	else
		ctx.out.line(fmt::format("synced {} {}", what, id));
	return kExitOk;
}

std::string resolve(const std::string &id)
{
	return id.starts_with(kSyncsPath) ? id : kSyncsPath + id;
}

nlohmann::json fetch(Client &client, const std::string &path)
{
	return syncJson(path, client.sync(path)->GetAll(kInterface));
}

void printSync(Context &ctx, const nlohmann::json &s)
{
	if (ctx.out.json()) {
		ctx.out.print(s);
		return;
	}
	std::vector<std::vector<std::string>> rows{
		{ "id", s["id"].get<std::string>() },
		{ "role", s["role"].get<std::string>() },
		{ "source", s["source"].get<std::string>() },
		{ "state", s["state"].get<std::string>() },
	};
	if (!s["listen"].get<std::string>().empty())
		rows.push_back({ "listen", s["listen"].get<std::string>() });
	if (s["interval_ms"].get<uint64_t>())
		rows.push_back({ "interval", fmt::format("{} ms", s["interval_ms"].get<uint64_t>()) });
	rows.push_back({ "last sync", std::to_string(s["last_sync"].get<uint64_t>()) });
	rows.push_back({ "rounds", std::to_string(s["rounds"].get<uint64_t>()) });
	rows.push_back({ "generation", std::to_string(s["generation"].get<uint64_t>()) });
	rows.push_back({ s["role"] == "push" ? "sent" : "received", r3d::formatSize(s["bytes_sent"].get<uint64_t>()) });
	rows.push_back({ "chunks changed", std::to_string(s["chunks_changed"].get<uint64_t>()) });
	rows.push_back({ "size", r3d::formatSize(s["source_bytes"].get<uint64_t>()) });
	for (const auto &d : s["destinations"]) {
		std::string text = fmt::format("{}, generation {}, lag {}", d["state"].get<std::string>(),
					       d["acked_generation"].get<uint64_t>(), d["lag"].get<uint64_t>());
		if (!d["error"].get<std::string>().empty())
			text += ": " + d["error"].get<std::string>();
		rows.push_back({ d["uri"].get<std::string>(), text });
	}
	if (!s["last_error"].get<std::string>().empty())
		rows.push_back({ "last error", s["last_error"].get<std::string>() });
	ctx.out.table({ "FIELD", "VALUE" }, rows);
}

// Until a round after `rounds` is done, showing what it sent; `call` runs it when given
// (sync now), else the push's own first round is waited for (start).
nlohmann::json waitRound(Context &ctx, const std::string &path, uint64_t rounds,
			 const std::function<void(Client &)> &call)
{
	std::string id = path.substr(path.rfind('/') + 1);
	ProgressReport report(ctx.out, "sync", id);
	auto start = fetch(ctx.client(), path);
	uint64_t sent0 = start["bytes_sent"].get<uint64_t>();
	std::atomic<bool> done{ false };
	std::exception_ptr error;
	std::thread worker;
	if (call) {
		Client &longClient = ctx.longClient();
		worker = std::thread([&] {
			try {
				call(longClient);
			} catch (...) {
				error = std::current_exception();
			}
			done = true;
		});
	}
	auto deadline = ctx.longTimeout() ? std::chrono::steady_clock::now() + *ctx.longTimeout()
					  : std::chrono::steady_clock::time_point::max();
	nlohmann::json s = start;
	// A round's bytes show when it is done: the total is the source's size.
	for (;;) {
		uint64_t sent = s["bytes_sent"].get<uint64_t>() - std::min(sent0, s["bytes_sent"].get<uint64_t>());
		report.update(sent, std::max(s["source_bytes"].get<uint64_t>(), sent), 0);
		if (call ? done.load() : s["rounds"].get<uint64_t>() > rounds)
			break;
		if (std::chrono::steady_clock::now() >= deadline) {
			if (worker.joinable())
				worker.detach();
			throw sdbus::Error("org.r3map.r3ctl.Error.Timeout", "the round was not done within --timeout");
		}
		std::this_thread::sleep_for(report.interval());
		try {
			s = fetch(ctx.client(), path);
		} catch (const sdbus::Error &) {
			// Stopped meanwhile: the call's own reply says what happened.
			if (!worker.joinable())
				throw;
			worker.join();
			report.finish();
			if (error)
				std::rethrow_exception(error);
			throw;
		}
	}
	if (worker.joinable())
		worker.join();
	report.finish();
	if (error)
		std::rethrow_exception(error);
	return fetch(ctx.client(), path);
}

int printCreated(Context &ctx, const nlohmann::json &s)
{
	if (ctx.out.json()) {
		ctx.out.print(s);
		return kExitOk;
	}
	ctx.out.line("sync " + s["id"].get<std::string>());
	if (!s["listen"].get<std::string>().empty())
		ctx.out.line("listening " + s["listen"].get<std::string>());
	for (const auto &d : s["destinations"])
		if (d["state"] == "failed")
			ctx.out.line(fmt::format("{}: FAILED: {}", d["uri"].get<std::string>(), d["error"].get<std::string>()));
	return kExitOk;
}

// Exit 1 when a destination did not acknowledge the round, as r3sync push does.
int roundResult(Context &ctx, const nlohmann::json &s)
{
	if (s["state"] == "failed")
		return ctx.out.failure({ kExitFailed, "org.r3map.Error.BackendFailed",
					 fmt::format("sync {}: {}", s["id"].get<std::string>(), s["last_error"].get<std::string>()) });
	printCreated(ctx, s);
	return s["state"] == "idle" ? kExitOk : kExitFailed;
}

int start(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv,
				{ { "interval", true }, { "hub", true }, { "chunk-size", true }, { "compress", false },
				  { "no-wait", false } },
				1, SIZE_MAX);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	std::vector<std::string> destinations(args->positional().begin() + 1, args->positional().end());
	if (destinations.empty() && !args->has("hub"))
		return ctx.out.usage("start needs SRC and at least one DEST (or --hub ADDR)", kUsage);
	std::map<std::string, sdbus::Variant> options;
	// The daemon checks the values: one place says what is wrong with them.
	if (auto v = args->value("interval"))
		options["interval"] = sdbus::Variant(*v);
	if (auto v = args->value("hub"))
		options["hub"] = sdbus::Variant(v->starts_with("r3://") ? *v : "r3://" + *v);
	if (auto v = args->value("chunk-size"))
		options["chunk_size"] = sdbus::Variant(*v);
	if (args->has("compress"))
		options["compress"] = sdbus::Variant(true);
	std::string path = ctx.client().manager().StartSync(args->positional()[0], destinations, options);
	if (args->has("no-wait"))
		return printCreated(ctx, fetch(ctx.client(), path));
	return roundResult(ctx, waitRound(ctx, path, 0, nullptr));
}

int serve(Context &ctx, const std::vector<std::string> &argv, bool hub)
{
	std::vector<Args::Option> flags{ { "listen", true } };
	if (hub) {
		flags.push_back({ "cache", true });
		flags.push_back({ "compress", false });
	} else {
		flags.push_back({ "dir", true });
		flags.push_back({ "apply", true });
		flags.push_back({ "verify", false });
	}
	for (const auto &f : securityFlags())
		flags.push_back(f);
	auto args = Args::parse(argv, flags, hub ? 1 : 0, hub ? SIZE_MAX : 0);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto listen = args->value("listen");
	auto dir = args->value(hub ? "cache" : "dir");
	if (!listen || !dir)
		return ctx.out.usage(hub ? "hub needs --listen ADDR and --cache DIR" : "serve needs --dir DIR and --listen ADDR",
				     kUsage);
	std::map<std::string, sdbus::Variant> options;
	addSecurityOptions(*args, options);
	if (auto v = args->value("apply"))
		options["apply"] = sdbus::Variant(*v);
	if (args->has("verify"))
		options["verify"] = sdbus::Variant(true);
	if (hub && args->has("compress"))
		options["compress"] = sdbus::Variant(true);
	auto &manager = ctx.client().manager();
	std::string path = hub ? manager.StartSyncHub(*listen, *dir, args->positional(), options)
			       : manager.ServeSync(*listen, *dir, options);
	return printCreated(ctx, fetch(ctx.client(), path));
}

int status(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 0, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (!args->positional().empty()) {
		printSync(ctx, fetch(ctx.client(), resolve(args->positional()[0])));
		return kExitOk;
	}
	nlohmann::json all = nlohmann::json::array();
	std::vector<std::vector<std::string>> rows;
	for (const auto &path : ctx.client().manager().ListSyncs()) {
		// The progress properties are not in GetManagedObjects' snapshot: ask each.
		auto s = fetch(ctx.client(), path);
		std::string where = s["role"] == "push" ? "" : s["listen"].get<std::string>();
		for (const auto &d : s["destinations"])
			where += (where.empty() ? "" : " ") + d["uri"].get<std::string>();
		rows.push_back({ s["id"].get<std::string>(), s["role"].get<std::string>(), s["state"].get<std::string>(),
				 std::to_string(s["generation"].get<uint64_t>()),
				 r3d::formatSize(s["bytes_sent"].get<uint64_t>()), s["source"].get<std::string>(), where });
		all.push_back(std::move(s));
	}
	if (ctx.out.json())
		ctx.out.print(all);
	else
		ctx.out.table({ "ID", "ROLE", "STATE", "GEN", "BYTES", "SOURCE", "TO" }, rows);
	return kExitOk;
}

int onOne(Context &ctx, const std::string &sub, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, {}, 1, 1);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	auto path = resolve(args->positional()[0]);
	if (sub == "stop") {
		ctx.client().sync(path)->Stop();
		if (ctx.out.json())
			ctx.out.print({ { "id", args->positional()[0] }, { "stopped", true } });
		return kExitOk;
	}
	// Only a push has rounds: the daemon says so for the others, without a progress bar.
	if (fetch(ctx.client(), path)["role"] != "push") {
		ctx.client().sync(path)->SyncNow();
		return kExitOk;
	}
	auto s = waitRound(ctx, path, 0, [&path](Client &c) { c.sync(path)->SyncNow(); });
	return roundResult(ctx, s);
}

int sync(Context &ctx, const std::vector<std::string> &argv)
{
	// The keywords of push sync; anything else is a mount, as before they came.
	std::string sub = argv.empty() ? "" : argv[0];
	std::vector<std::string> rest(argv.begin() + (argv.empty() ? 0 : 1), argv.end());
	if (sub == "start")
		return start(ctx, rest);
	if (sub == "serve" || sub == "hub")
		return serve(ctx, rest, sub == "hub");
	if (sub == "status")
		return status(ctx, rest);
	if (sub == "stop" || sub == "now")
		return onOne(ctx, sub, rest);
	return syncManaged(ctx, argv);
}

} // namespace

const Command kSyncCommand{ "sync", "push sync: a managed mount to its remote, or files (start, serve, hub)", kUsage,
			    sync };

} // namespace r3ctl
