#include "hook_command.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <r3d/unique_fd.hpp>

namespace r3mapd {

r3d::ResultMsg<HookCommand> HookCommand::create(std::string command, uid_t caller)
{
	if (command.empty())
		return r3d::fail(EINVAL, "the hook command is empty");
	if (command.size() > 4096)
		return r3d::fail(EINVAL, fmt::format("the hook command has {} bytes; at most 4096", command.size()));
	if (command.find('\0') != std::string::npos)
		return r3d::fail(EINVAL, "the hook command contains a NUL byte");
	struct passwd pw {};
	struct passwd *found = nullptr;
	std::vector<char> buf(16384);
	if (::getpwuid_r(caller, &pw, buf.data(), buf.size(), &found) != 0 || !found)
		return r3d::fail(EPERM, fmt::format("uid {} has no passwd entry: a hook cannot run as it", caller));
	HookCommand h;
	h.command_ = std::move(command);
	h.uid_ = caller;
	h.gid_ = pw.pw_gid;
	return h;
}

r3d::ResultMsg<void> HookCommand::run(std::chrono::milliseconds timeout) const
{
	// Everything the child needs is ready before fork: after it, in a threaded process, only
	// async-signal-safe calls.
	struct passwd pw {};
	struct passwd *found = nullptr;
	std::vector<char> buf(16384);
	if (::getpwuid_r(uid_, &pw, buf.data(), buf.size(), &found) != 0 || !found)
		return r3d::fail(EPERM, fmt::format("uid {} has no passwd entry", uid_));
	int ngroups = 64;
	std::vector<gid_t> groups(ngroups);
	if (::getgrouplist(pw.pw_name, gid_, groups.data(), &ngroups) < 0) {
		groups.resize(ngroups);
		if (::getgrouplist(pw.pw_name, gid_, groups.data(), &ngroups) < 0)
			return r3d::fail(EPERM, fmt::format("the groups of uid {} cannot be listed", uid_));
	}
	groups.resize(ngroups);
	const char *argv[] = { "sh", "-c", command_.c_str(), nullptr };
	pid_t pid = ::fork();
	if (pid < 0)
		return r3d::fail(errno, fmt::format("fork for the hook: {}", std::strerror(errno)));
	if (pid == 0) {
		::setpgid(0, 0); // its own group: a timeout kills what it started too
		int null = ::open("/dev/null", O_RDONLY);
		if (null >= 0)
			::dup2(null, 0);
		sigset_t none;
		sigemptyset(&none);
		::sigprocmask(SIG_SETMASK, &none, nullptr);
		if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0)
			::_exit(126);
		::execv("/bin/sh", const_cast<char *const *>(argv));
		::_exit(127);
	}
	// Woken by the child's exit through a pidfd, not by polling: the hook's run is inside the
	// migration's downtime when it is the suspend hook.
	// (syscall: Debian 12's <sys/pidfd.h> declares pidfd_open without C linkage.)
	r3d::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
	auto deadline = std::chrono::steady_clock::now() + timeout;
	int status = 0;
	for (;;) {
		pid_t r = ::waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return r3d::fail(errno, fmt::format("waiting for the hook: {}", std::strerror(errno)));
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		if (left.count() <= 0) {
			::kill(-pid, SIGKILL);
			::kill(pid, SIGKILL);
			::waitpid(pid, &status, 0);
			return r3d::fail(ETIMEDOUT, fmt::format("'{}' did not finish within {} ms; killed", command_,
								 timeout.count()));
		}
		if (pidfd) {
			struct pollfd p { pidfd.get(), POLLIN, 0 };
			::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 60000)));
		} else {
			// No pidfd (a kernel before 5.3): poll the status.
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return {};
	if (WIFSIGNALED(status))
		return r3d::fail(ECANCELED, fmt::format("'{}' was killed by signal {}", command_, WTERMSIG(status)));
	return r3d::fail(ECANCELED, fmt::format("'{}' exited with {}", command_, WEXITSTATUS(status)));
}

} // namespace r3mapd
