#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/memory_region.hpp>
#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage =
	"usage: r3ctl map URI --size SIZE [--tracking MODE] [--socket PATH] -- PROGRAM [ARGS...]\n"
	"Runs PROGRAM with a memory region of SIZE bytes of backend URI to map:\n"
	"R3MAP_REGION_URI, R3MAP_REGION_SIZE (bytes), R3MAP_REGION_TRACKING and\n"
	"R3MAP_REGION_SOCKET in its environment, which r3d_region_map() or\n"
	"r3d::DaemonRegion use (see the example r3map-region-demo). URI mount:ID or\n"
	"export:ID maps a region of a mount or export of r3mapd through its pipeline.\n"
	"--tracking: how the app's writes are found and written back: none (default:\n"
	"they stay in memory), wp-async, wp-sync or auto (wp-async where the kernel has\n"
	"it); a program that chooses a mode itself keeps its own. r3mapd serves the\n"
	"region's faults; it is freed when the program exits. Exits with the program's\n"
	"status.\n";

int map(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "size", true }, { "socket", true }, { "tracking", true } }, 1, 1, true);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (!args->has("size"))
		return ctx.out.usage("--size is required", kUsage);
	if (args->command().empty())
		return ctx.out.usage("no program to run after --", kUsage);
	auto size = r3d::parseSize(*args->value("size"));
	if (!size || *size == 0)
		return ctx.out.usage(fmt::format("bad --size '{}'", *args->value("size")), kUsage);
	auto tracking = args->value("tracking");
	if (tracking && !r3d::parseTracking(*tracking))
		return ctx.out.usage(fmt::format("bad --tracking '{}': none, wp-async, wp-sync or auto", *tracking), kUsage);
	::setenv("R3MAP_REGION_URI", args->positional()[0].c_str(), 1);
	::setenv("R3MAP_REGION_SIZE", std::to_string(*size).c_str(), 1);
	// The app's library reads the mode from here (DaemonRegionOptions::tracking).
	if (tracking)
		::setenv("R3MAP_REGION_TRACKING", tracking->c_str(), 1);
	if (auto socket = args->value("socket"))
		::setenv("R3MAP_REGION_SOCKET", socket->c_str(), 1);
	std::vector<char *> cargv;
	for (const auto &a : args->command())
		cargv.push_back(const_cast<char *>(a.c_str()));
	cargv.push_back(nullptr);
	pid_t pid = ::fork();
	if (pid < 0) {
		std::fprintf(stderr, "r3ctl: fork: %s\n", std::strerror(errno));
		return kExitFailed;
	}
	if (pid == 0) {
		::execvp(cargv[0], cargv.data());
		std::fprintf(stderr, "r3ctl: cannot run %s: %s\n", cargv[0], std::strerror(errno));
		::_exit(127);
	}
	int status = 0;
	while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (WIFSIGNALED(status)) {
		std::fprintf(stderr, "r3ctl: %s: %s\n", cargv[0], strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

} // namespace

const Command kMapCommand{ "map", "run a program with a memory region served by r3mapd", kUsage, map };

} // namespace r3ctl
