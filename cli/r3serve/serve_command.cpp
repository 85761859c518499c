#include "serve_command.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <r3d/log.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "device_mode.hpp"
#include "nbd_mode.hpp"
#include "r3_mode.hpp"
#include "serve_loop.hpp"
#include "base/runtime.hpp"
#include "nbd/server.hpp"
#include "serve_options.hpp"

namespace r3serve {

namespace {

// oom_score_adj -1000: never chosen by the OOM killer. Needs CAP_SYS_RESOURCE.
r3d::ResultMsg<void> protectFromOomKiller()
{
	r3d::UniqueFd fd(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
	constexpr char kNever[] = "-1000";
	if (!fd || ::write(fd.get(), kNever, sizeof kNever - 1) != static_cast<ssize_t>(sizeof kNever - 1))
		return r3d::fail(errno, fmt::format("oom_score_adj -1000: {}", std::strerror(errno)));
	return {};
}

} // namespace

int runServe(int argc, char **argv)
{
	auto parsed = parseServeOptions(argc, argv);
	if (!parsed) {
		std::fprintf(stderr, "r3serve: %s\n%s", parsed.error().message.c_str(), serveUsage());
		return 2;
	}
	const ServeOptions &o = *parsed;
	if (o.help) {
		std::fputs(serveUsage(), stdout);
		return 0;
	}
	r3d::log::setup();
	if (!r3d::log::setLevel(o.logLevel)) {
		std::fprintf(stderr, "r3serve: unknown log level '%s' (trace, debug, info, warn, error, off)\n",
			     o.logLevel.c_str());
		return 2;
	}
	// On a swap device's path: were r3serve's own pages (its code too) paged out, or did an
	// allocation of it reclaim by swapping, the kernel would wait on the swap for the server
	// of that swap. Lock what is mapped now and each later page when first touched (not whole
	// thread stacks up front), and make every thread (they inherit it) an IO flusher.
	if (o.swap) {
		if (::mlockall(MCL_CURRENT) != 0 || ::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
			std::fprintf(stderr, "r3serve: --swap: mlockall: %s\n", std::strerror(errno));
			return 1;
		}
		r3d::nbd::markIoFlusher();
		// The OOM killer must not pick the server of the swap it could free memory into.
		if (auto ok = protectFromOomKiller(); !ok) {
			std::fprintf(stderr, "r3serve: --swap: %s\n", ok.error().message.c_str());
			return 1;
		}
	}
	// The run loop takes signals with sigtimedwait; block them before any thread starts.
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &signals, nullptr);
	std::signal(SIGPIPE, SIG_IGN);

	// The process's one Runtime: every mode's network I/O and blocking work run on it. Its
	// blocking threads may serve a kernel device, so reclaim must not wait on them.
	r3d::RuntimeOptions runtimeOptions;
	runtimeOptions.blockingThreads = o.workers;
	runtimeOptions.onBlockingStart = r3d::nbd::markIoFlusher;
	r3d::Runtime runtime(runtimeOptions);
	std::unique_ptr<ServeMode> mode;
	if (o.r3)
		mode = std::make_unique<R3Mode>(o, runtime);
	else if (!o.device.empty())
		mode = std::make_unique<DeviceMode>(o, runtime);
	else
		mode = std::make_unique<NbdMode>(o, runtime);
	return runServeLoop(*mode, o, signals);
}

} // namespace r3serve
