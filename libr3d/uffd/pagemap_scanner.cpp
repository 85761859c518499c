#include "uffd/pagemap_scanner.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

namespace r3d::uffd {
namespace {

// From <linux/fs.h> of 6.7; Debian 12's uapi headers are 6.1.
struct PageRegion {
	uint64_t start, end, categories;
};
struct PmScanArg {
	uint64_t size, flags, start, end, walkEnd, vec, vecLen, maxPages;
	uint64_t categoryInverted, categoryMask, categoryAnyofMask, returnMask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kWpMatching = 1u << 0;
constexpr uint64_t kCheckWpAsync = 1u << 1;
constexpr uint64_t kPageIsWritten = 1u << 1;
constexpr size_t kRegionsPerCall = 512;

} // namespace

ResultMsg<PagemapScanner> PagemapScanner::open(pid_t pid)
{
	auto path = pid == 0 ? std::string("/proc/self/pagemap") : fmt::format("/proc/{}/pagemap", pid);
	PagemapScanner s;
	s.fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!s.fd_)
		return fail(lastErrno(), fmt::format("{}: {}", path, std::strerror(errno)));
	return s;
}

Result<void> PagemapScanner::scan(uintptr_t start, uintptr_t end, bool protect,
				  const std::function<void(uintptr_t, uintptr_t)> &fn) const
{
	std::vector<PageRegion> vec(kRegionsPerCall);
	while (start < end) {
		PmScanArg a{};
		a.size = sizeof a;
		a.flags = kCheckWpAsync | (protect ? kWpMatching : 0);
		a.start = start;
		a.end = end;
		a.vec = reinterpret_cast<uintptr_t>(vec.data());
		a.vecLen = vec.size();
		a.categoryMask = kPageIsWritten;
		a.returnMask = kPageIsWritten;
		int n = ::ioctl(fd_.get(), kPagemapScan, &a);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return unexpected(lastErrno());
		}
		for (int i = 0; i < n; ++i)
			fn(vec[static_cast<size_t>(i)].start, vec[static_cast<size_t>(i)].end);
		// walk_end: where it stopped (the vector filled up), or `end`.
		if (a.walkEnd <= start)
			break;
		start = a.walkEnd;
	}
	return {};
}

} // namespace r3d::uffd
