#include "uffd/orphan_guard.hpp"

#include <csignal>

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "test_support.hpp"
#include "uffd/userfault_fd.hpp"

using namespace r3d::uffd;

namespace {

const r3test::Prerequisite uffdPresent("userfaultfd is not available to this process",
				       [] { return UserfaultFd::kernelFeatures().has_value(); });

} // namespace

// The app's side of a region served by r3mapd, with a socketpair standing in for r3mapd.
TEST_CASE("orphan guard: when r3mapd's connection closes, a page not present raises SIGBUS, not zeros",
	  "[uffd][region]")
{
	UserfaultFd::OpenOptions o;
	o.wanted = UFFD_FEATURE_THREAD_ID | kFeaturePoison;
	pid_t pid = ::fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		::alarm(10); // a hang is SIGALRM
		auto uffd = UserfaultFd::open(o);
		const size_t len = 4 * 4096;
		auto *p = static_cast<volatile char *>(
			::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
		if (!uffd || p == MAP_FAILED || !uffd->registerMissing(const_cast<char *>(p), len))
			::_exit(3);
		int s[2];
		if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s) != 0)
			::_exit(3);
		OrphanGuard guard(std::move(*uffd), r3d::UniqueFd(s[0]), reinterpret_cast<uintptr_t>(p), len);
		::close(s[1]); // "r3mapd" dies
		char c = p[4096];
		::_exit(c == 0 ? 4 : 5); // zeros: 4
	}
	int status = 0;
	REQUIRE(::waitpid(pid, &status, 0) == pid);
	REQUIRE(WIFSIGNALED(status));
	CHECK(WTERMSIG(status) == SIGBUS);
}
