#include <cstdio>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "fd_runner.hpp"
#include "long_call.hpp"
#include "managed_flags.hpp"
#include "unmount_on_exit.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage =
	"usage: r3ctl mount URI [--size S] [--chunk-size S] [--read-only]\n"
	"       r3ctl mount URI --managed [--cache memory|NAME|DIR] [--chunk-size S] [--pull-workers N]\n"
	"                   [--push-interval D] [--order linear|reverse|hot:FILE] [--pull-first S|N%]\n"
	"                   [--pull-rate R] [--push-rate R] [--remote-timeout D] [--background yes|no]\n"
	"                   [--discard-local] [--wait-local]\n"
	"       r3ctl mount URI [...] --fd [--rm] -- PROGRAM [ARGS...]\n"
	"Attaches the backend URI to a free /dev/nbdN and prints the device. With --managed, the\n"
	"device is served from a local cache (in memory, or a directory: resumable) that is pulled\n"
	"from and pushed to URI in the background; --wait-local returns once all of it is local,\n"
	"with progress. With --fd, runs PROGRAM with an open descriptor of the device (its number\n"
	"in R3MAP_FD); --rm unmounts when PROGRAM exits.\n";

int mount(Context &ctx, const std::vector<std::string> &argv)
{
	std::vector<Args::Option> flags{ { "size", true },	 { "chunk-size", true }, { "read-only", false },
					 { "fd", false },	 { "rm", false },	  { "wait-local", false } };
	for (const auto &f : managedFlags())
		flags.push_back(f);
	auto args = Args::parse(argv, flags, 1, 1, true);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	bool runProgram = args->has("fd");
	if (runProgram != !args->command().empty())
		return ctx.out.usage(runProgram ? "--fd needs a program after '--'" : "a program after '--' needs --fd",
				     kUsage);
	if (args->has("rm") && !runProgram)
		return ctx.out.usage("--rm goes with --fd", kUsage);

	std::map<std::string, sdbus::Variant> options;
	auto managed = addManagedOptions(*args, options);
	if (!managed)
		return ctx.out.usage(managed.error().message, kUsage);
	if (args->has("wait-local") && !*managed)
		return ctx.out.usage("--wait-local goes with --managed", kUsage);
	for (auto [flag, key] : { std::pair{ "size", "size" }, std::pair{ "chunk-size", "chunk_size" } }) {
		if (*managed && key == std::string("chunk_size"))
			continue; // the managed chunk-size, sent by addManagedOptions
		if (auto text = args->value(flag)) {
			auto bytes = r3d::parseSize(*text);
			if (!bytes)
				return ctx.out.usage(fmt::format("--{}: {}", flag, bytes.error().message), kUsage);
			options[key] = sdbus::Variant(*bytes);
		}
	}
	bool readOnly = args->has("read-only");
	if (readOnly)
		options["read_only"] = sdbus::Variant(true);

	auto &client = ctx.client();
	// A managed Mount with pull-first returns once that much is local: no timeout of ours.
	auto &caller = *managed ? ctx.longClient() : client;
	std::string path = caller.manager().Mount(args->positional()[0], options);
	// From here on every way out unmounts, as --rm promised (a managed one pushes first).
	UnmountOnExit rm([&caller, path] { caller.mount(path)->Unmount(); }, path, args->has("rm"));
	auto properties = client.mount(path)->GetAll(org::r3map::Mount1_proxy::INTERFACE_NAME);
	auto view = mountJson(path, properties);
	if (*managed)
		view["managed"] = managedJson(client.managed(path)->GetAll(org::r3map::Managed1_proxy::INTERFACE_NAME));
	if (args->has("wait-local")) {
		waitLocal(ctx, view["id"].get<std::string>(), path, view["size"].get<uint64_t>());
		view["managed"] = managedJson(client.managed(path)->GetAll(org::r3map::Managed1_proxy::INTERFACE_NAME));
		view["event"] = "done";
	}
	if (!runProgram) {
		if (ctx.out.json())
			ctx.out.print(view);
		else
			ctx.out.line(view["device"].get<std::string>());
		return kExitOk;
	}
	std::fprintf(stderr, "r3ctl: mount %s is %s\n", view["id"].get<std::string>().c_str(),
		     view["device"].get<std::string>().c_str());
	return rm.finish(openAndRun(ctx, path, readOnly, args->command()));
}

} // namespace

const Command kMountCommand{ "mount", "attach a backend to a /dev/nbdN", kUsage, mount };

} // namespace r3ctl
