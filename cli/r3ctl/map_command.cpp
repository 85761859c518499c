#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "args.hpp"
#include "commands.hpp"

namespace r3ctl {

namespace {

constexpr const char *kUsage = "usage: r3ctl map URI --size SIZE [--socket PATH] -- PROGRAM [ARGS...]\n"
			       "Runs PROGRAM with a memory region of SIZE bytes of backend URI to map:\n"
			       "R3MAP_REGION_URI, R3MAP_REGION_SIZE (bytes) and R3MAP_REGION_SOCKET in its\n"
			       "environment, which r3d_region_map() or r3d::DaemonRegion use (see the\n"
			       "example r3map-region-demo). r3mapd serves the region's faults; it is freed\n"
			       "when the program exits. Exits with the program's status.\n";

int map(Context &ctx, const std::vector<std::string> &argv)
{
	auto args = Args::parse(argv, { { "size", true }, { "socket", true } }, 1, 1, true);
	if (!args)
		return ctx.out.usage(args.error().message, kUsage);
	if (!args->has("size"))
		return ctx.out.usage("--size is required", kUsage);
	if (args->command().empty())
		return ctx.out.usage("no program to run after --", kUsage);
	auto size = r3d::parseSize(*args->value("size"));
	if (!size || *size == 0)
		return ctx.out.usage(fmt::format("bad --size '{}'", *args->value("size")), kUsage);
	::setenv("R3MAP_REGION_URI", args->positional()[0].c_str(), 1);
	::setenv("R3MAP_REGION_SIZE", std::to_string(*size).c_str(), 1);
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
