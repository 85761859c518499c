#include "fd_runner.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exit_codes.hpp"

namespace r3ctl {

int runWithFd(r3d::UniqueFd fd, const std::string &device, const std::string &mountPath,
	      const std::vector<std::string> &command)
{
	std::vector<char *> argv;
	for (const auto &a : command)
		argv.push_back(const_cast<char *>(a.c_str()));
	argv.push_back(nullptr);
	std::string fdText = std::to_string(fd.get());

	std::fflush(nullptr);
	pid_t pid = ::fork();
	if (pid < 0) {
		std::fprintf(stderr, "r3ctl: fork: %s\n", std::strerror(errno));
		return 127;
	}
	if (pid == 0) {
		// Only this descriptor crosses exec; everything else of ours is CLOEXEC.
		if (::fcntl(fd.get(), F_SETFD, 0) < 0 || ::setenv("R3MAP_FD", fdText.c_str(), 1) < 0
		    || ::setenv("R3MAP_DEVICE", device.c_str(), 1) < 0 || ::setenv("R3MAP_MOUNT", mountPath.c_str(), 1) < 0)
			::_exit(127);
		::execvp(argv[0], argv.data());
		std::fprintf(stderr, "r3ctl: cannot run %s: %s\n", argv[0], std::strerror(errno));
		::_exit(127);
	}
	fd.reset();
	// The terminal's ^C reaches the child; we stay to report its status.
	struct sigaction ignore {};
	ignore.sa_handler = SIG_IGN;
	struct sigaction oldInt {}, oldQuit {};
	::sigaction(SIGINT, &ignore, &oldInt);
	::sigaction(SIGQUIT, &ignore, &oldQuit);
	int status = 0;
	while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	::sigaction(SIGINT, &oldInt, nullptr);
	::sigaction(SIGQUIT, &oldQuit, nullptr);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int openAndRun(Context &ctx, const std::string &path, bool readOnly, const std::vector<std::string> &command)
{
	auto mount = ctx.client().mount(path);
	std::string device = mount->Device();
	sdbus::UnixFd received = mount->OpenFd(readOnly ? O_RDONLY : O_RDWR);
	// The UnixFd closes its descriptor; the child gets one we own.
	r3d::UniqueFd fd(::fcntl(received.get(), F_DUPFD_CLOEXEC, 3));
	if (!fd) {
		std::fprintf(stderr, "r3ctl: cannot keep the descriptor: %s\n", std::strerror(errno));
		return kExitFailed;
	}
	received.reset();
	return runWithFd(std::move(fd), device, path, command);
}

} // namespace r3ctl
