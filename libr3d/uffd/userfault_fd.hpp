#pragma once

// One userfaultfd: opening it (the userfaultfd(2) syscall with UFFD_USER_MODE_ONLY, falling
// back to /dev/userfaultfd's USERFAULTFD_IOC_NEW), the UFFDIO_API handshake and the ioctls
// a memory region needs. No policy here: the region decides what to copy and when.
//
// With UFFD_USER_MODE_ONLY only faults from user mode reach the handler; a system call that
// touches a page not pulled yet (write(2) from the region, say) fails with EFAULT instead of
// waiting. /dev/userfaultfd (root, or its file permissions) traps kernel faults as well:
// OpenOptions::kernelFaults asks for it first.

#include <cstdint>
#include <optional>

#include <linux/userfaultfd.h>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::uffd {

/// UFFD_FEATURE_POISON (6.6), missing from older uapi headers.
inline constexpr uint64_t kFeaturePoison = uint64_t{ 1 } << 14;
/// UFFD_FEATURE_WP_UNPOPULATED (6.4): write protection of pages not populated yet; needed
/// for PAGEMAP_SCAN's PM_SCAN_CHECK_WPASYNC on anonymous memory.
inline constexpr uint64_t kFeatureWpUnpopulated = uint64_t{ 1 } << 13;
/// UFFD_FEATURE_WP_ASYNC (6.7): the kernel resolves write-protect faults itself, no message.
inline constexpr uint64_t kFeatureWpAsync = uint64_t{ 1 } << 15;
/// Both, for dirty tracking with PAGEMAP_SCAN.
inline constexpr uint64_t kFeaturesWpAsync = kFeatureWpAsync | kFeatureWpUnpopulated;

class UserfaultFd
{
public:
	struct OpenOptions {
		/// Features asked for; those the kernel lacks are left out (see features()).
		uint64_t wanted = 0;
		/// Features without which open() fails, naming them.
		uint64_t required = 0;
		/// Trap faults from system calls too: /dev/userfaultfd first, the syscall without
		/// UFFD_USER_MODE_ONLY second (CAP_SYS_PTRACE); fails if neither works.
		bool kernelFaults = false;
	};

	/// Opens a non-blocking, close-on-exec userfaultfd and does the API handshake.
	static ResultMsg<UserfaultFd> open(const OpenOptions &options);
	/// The features this kernel offers (probed once per process on a throw-away uffd).
	static ResultMsg<uint64_t> kernelFeatures();

	UserfaultFd() = default;
	/// Adopts a uffd whose handshake is done (the child's uffd of a FORK event).
	UserfaultFd(UniqueFd fd, uint64_t features) : fd_(std::move(fd)), features_(features) {}

	int fd() const { return fd_.get(); }
	uint64_t features() const { return features_; }
	bool has(uint64_t feature) const { return (features_ & feature) == feature; }
	/// How the fd was made, for logs: "syscall (user mode only)", "/dev/userfaultfd", ...
	const char *origin() const { return origin_; }

	/// UFFDIO_REGISTER in MISSING mode (plus WP with `writeProtect`); fails unless COPY and
	/// WAKE (and WRITEPROTECT) are offered on it.
	Result<void> registerMissing(void *addr, uint64_t len, bool writeProtect = false);
	Result<void> unregister(void *addr, uint64_t len);
	/// UFFDIO_COPY of `len` bytes to `dst` (page aligned), waking the waiters. Returns the
	/// bytes copied, which may be short: with EEXIST (a page in the way is present),
	/// EAGAIN (the layout is changing: an event is queued) or ENOENT (not registered).
	struct Copied {
		uint64_t bytes = 0;
		int error = 0; ///< 0, or why it stopped short
	};
	/// With `writeProtect` the pages land write-protected (UFFDIO_COPY_MODE_WP), so the
	/// first write to them is seen.
	Copied copy(void *dst, const void *src, uint64_t len, bool writeProtect = false);
	/// UFFDIO_WRITEPROTECT: protects [addr, addr+len), or lifts the protection and wakes the
	/// writers waiting on it. EAGAIN: the layout is changing (an event is queued), try again
	/// once it is read.
	Result<void> writeProtect(void *addr, uint64_t len, bool protect);
	Result<void> wake(void *addr, uint64_t len);
	/// UFFDIO_POISON (6.6+): a touch of these pages raises SIGBUS until they are discarded.
	Result<void> poison(void *addr, uint64_t len);
	/// The next message, or nullopt when none is queued (EAGAIN).
	Result<std::optional<uffd_msg>> read();

private:
	UniqueFd fd_;
	uint64_t features_ = 0;
	const char *origin_ = "adopted";
};

/// A readable name for an event (PAGEFAULT, FORK, ...).
const char *eventName(uint8_t event);

} // namespace r3d::uffd
