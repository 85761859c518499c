#include <cstdio>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "fd_runner.hpp"
#include "unmount_on_exit.hpp"
#include "views.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage =
	"usage: r3ctl mount URI [--size S] [--chunk-size S] [--read-only]\n"
	"       r3ctl mount URI [...] --fd [--rm] -- PROGRAM [ARGS...]\n"
	"Attaches the backend URI to a free /dev/nbdN and prints the device. With --fd, runs\n"
	"PROGRAM with an open descriptor of the device (its number in R3MAP_FD); --rm unmounts\n"
	"when PROGRAM exits.\n";

int mount(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv,
				{ { "size", true }, { "chunk-size", true }, { "read-only", false }, { "fd", false },
				  { "rm", false } },
				1, 1, true);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	bool runProgram = args->has("fd");
	if (runProgram != !args->command().empty())
		return ctx.out.usage(runProgram ? "--fd needs a program after '--'" : "a program after '--' needs --fd",
				     kUsage);
	if (args->has("rm") && !runProgram)
		return ctx.out.usage("--rm goes with --fd", kUsage);

	std::map<std::string, sdbus::Variant> options;
	for (auto [flag, key] : { std::pair{ "size", "size" }, std::pair{ "chunk-size", "chunk_size" } }) {
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
	std::string path = client.manager().Mount(args->positional()[0], options);
	// From here on every way out unmounts, as --rm promised.
	UnmountOnExit rm([&client, path] { client.mount(path)->Unmount(); }, path, args->has("rm"));
	auto properties = client.mount(path)->GetAll(org::r3map::Mount1_proxy::INTERFACE_NAME);
	auto view = mountJson(path, properties);
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
