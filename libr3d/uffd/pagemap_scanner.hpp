#pragma once

// The PAGEMAP_SCAN ioctl (6.7+) on a process's /proc/PID/pagemap: which pages of a range
// with WP_ASYNC write protection were written since they were last protected, and, in the
// same walk, protecting them again (PM_SCAN_WP_MATCHING), so that a write racing the scan
// is either reported now or faults into the next one. Only PAGE_IS_WRITTEN is asked for:
// other categories misreport zapped pages on kernels without later fixes (gVisor's choice).
// PM_SCAN_CHECK_WPASYNC makes the kernel refuse (EPERM) a range not registered that way.

#include <cstdint>
#include <functional>

#include <sys/types.h>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::uffd {

class PagemapScanner
{
public:
	/// Opens /proc/PID/pagemap (0: this process's). Another process's needs ptrace access
	/// to it (the same uid, or CAP_SYS_PTRACE).
	static ResultMsg<PagemapScanner> open(pid_t pid);

	/// Calls fn(start, end) for every run of written pages in [start, end) (addresses,
	/// page aligned); with `protect` they are write-protected again in the same walk.
	Result<void> scan(uintptr_t start, uintptr_t end, bool protect,
			  const std::function<void(uintptr_t, uintptr_t)> &fn) const;

private:
	UniqueFd fd_;
};

} // namespace r3d::uffd
