#include "uffd/orphan_guard.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "r3d/log.hpp"

namespace r3d::uffd {
namespace {

auto logger()
{
	return r3d::log::get("uffd");
}

} // namespace

OrphanGuard::OrphanGuard(UserfaultFd uffd, UniqueFd connection, uintptr_t base, uint64_t size)
	: uffd_(std::move(uffd)), connection_(std::move(connection)), stop_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
	  base_(base), size_(size), page_(static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)))
{
	thread_ = std::thread([this] { watch(); });
}

OrphanGuard::~OrphanGuard()
{
	stop();
}

void OrphanGuard::stop()
{
	if (!thread_.joinable())
		return;
	uint64_t one = 1;
	if (::write(stop_.get(), &one, sizeof one) < 0)
		logger()->error("region guard: cannot stop its thread: {}", std::strerror(errno));
	thread_.join();
}

void OrphanGuard::watch()
{
	// Only the hang-up: replies are read by the thread that sent the request.
	pollfd p[2] = { { connection_.get(), POLLRDHUP, 0 }, { stop_.get(), POLLIN, 0 } };
	for (;;) {
		int n = ::poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			logger()->critical("region guard: poll: {}", std::strerror(errno));
			return;
		}
		if (p[1].revents)
			return;
		if (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
			break;
	}
	orphaned_.store(true, std::memory_order_release);
	logger()->error("r3mapd no longer serves the region at {:#x}: pages not present raise SIGBUS from now on",
			base_);
	serveOrphaned();
}

void OrphanGuard::serveOrphaned()
{
	// Faults r3mapd read and never answered wait for a wake: they come again, to us.
	(void)uffd_.wake(reinterpret_cast<void *>(base_), size_);
	pollfd p[2] = { { uffd_.fd(), POLLIN, 0 }, { stop_.get(), POLLIN, 0 } };
	std::vector<uintptr_t> unprotect; // writes to lift once the queued events are read
	for (;;) {
		int n = ::poll(p, 2, unprotect.empty() ? -1 : 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[1].revents)
			return;
		for (;;) {
			auto m = uffd_.read();
			if (!m || !*m)
				break;
			const uffd_msg &msg = **m;
			if (msg.event != UFFD_EVENT_PAGEFAULT)
				continue; // read is enough: the munmap or madvise goes on
			uintptr_t page = msg.arg.pagefault.address & ~(page_ - 1);
			if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
				// A write to a present page (wp-sync tracking): nobody writes it back any
				// more, but the app's memory stays its own.
				unprotect.push_back(page);
				continue;
			}
			if (uffd_.has(kFeaturePoison) && uffd_.poison(reinterpret_cast<void *>(page), page_))
				continue;
			uint32_t tid = msg.arg.pagefault.feat.ptid;
			if (tid == 0 || ::syscall(SYS_tgkill, ::getpid(), tid, SIGBUS) != 0)
				logger()->critical("region guard: cannot signal thread {} faulting at {:#x}", tid, page);
		}
		std::erase_if(unprotect, [&](uintptr_t page) {
			auto r = uffd_.writeProtect(reinterpret_cast<void *>(page), page_, false);
			return r || r.error().value() != EAGAIN;
		});
	}
}

} // namespace r3d::uffd
