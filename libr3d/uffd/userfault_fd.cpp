#include "uffd/userfault_fd.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

namespace r3d::uffd {
namespace {

// Older uapi headers (Debian 12's are 6.1) lack the newer bits.
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif

constexpr uint64_t kKnownFeatures[] = { UFFD_FEATURE_EVENT_FORK, UFFD_FEATURE_EVENT_REMAP, UFFD_FEATURE_EVENT_REMOVE,
					UFFD_FEATURE_EVENT_UNMAP, UFFD_FEATURE_THREAD_ID, uint64_t{ 1 } << 14,
					uint64_t{ 1 } << 13, uint64_t{ 1 } << 15 };
const char *featureName(uint64_t f)
{
	switch (f) {
	case UFFD_FEATURE_EVENT_FORK: return "EVENT_FORK";
	case UFFD_FEATURE_EVENT_REMAP: return "EVENT_REMAP";
	case UFFD_FEATURE_EVENT_REMOVE: return "EVENT_REMOVE";
	case UFFD_FEATURE_EVENT_UNMAP: return "EVENT_UNMAP";
	case UFFD_FEATURE_THREAD_ID: return "THREAD_ID";
	case uint64_t{ 1 } << 14: return "POISON";
	case uint64_t{ 1 } << 13: return "WP_UNPOPULATED";
	case uint64_t{ 1 } << 15: return "WP_ASYNC";
	}
	return "?";
}

std::string featureNames(uint64_t bits)
{
	std::string out;
	for (uint64_t f : kKnownFeatures)
		if (bits & f)
			out += (out.empty() ? "" : ", ") + std::string(featureName(f));
	uint64_t known = 0;
	for (uint64_t f : kKnownFeatures)
		known |= f;
	if (uint64_t rest = bits & ~known)
		out += fmt::format("{}{:#x}", out.empty() ? "" : ", ", rest);
	return out;
}

// A raw uffd, before the handshake; `origin` says which way worked.
ResultMsg<UniqueFd> create(bool kernelFaults, const char *&origin)
{
	const int flags = O_CLOEXEC | O_NONBLOCK;
	std::string tried;
	auto viaSyscall = [&](int extra, const char *name) -> UniqueFd {
		UniqueFd fd(static_cast<int>(::syscall(SYS_userfaultfd, flags | extra)));
		if (fd)
			origin = name;
		else
			tried += fmt::format("{}userfaultfd({}): {}", tried.empty() ? "" : "; ", name, std::strerror(errno));
		return fd;
	};
	auto viaDevice = [&]() -> UniqueFd {
		UniqueFd dev(::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
		if (!dev) {
			tried += fmt::format("{}/dev/userfaultfd: {}", tried.empty() ? "" : "; ", std::strerror(errno));
			return {};
		}
		UniqueFd fd(::ioctl(dev.get(), USERFAULTFD_IOC_NEW, flags));
		if (fd)
			origin = "/dev/userfaultfd";
		else
			tried += fmt::format("{}USERFAULTFD_IOC_NEW: {}", tried.empty() ? "" : "; ", std::strerror(errno));
		return fd;
	};
	UniqueFd fd;
	if (kernelFaults) {
		// Asked for: a uffd that traps only user-mode faults would not do.
		if (!(fd = viaDevice()))
			fd = viaSyscall(0, "syscall");
		if (!fd)
			return fail(EPERM, "no userfaultfd that traps kernel faults (" + tried + ")");
		return fd;
	}
	if (!(fd = viaSyscall(UFFD_USER_MODE_ONLY, "syscall (user mode only)")))
		fd = viaDevice();
	if (!fd)
		return fail(ENOSYS, "userfaultfd is not available here (" + tried + ")");
	return fd;
}

} // namespace

ResultMsg<uint64_t> UserfaultFd::kernelFeatures()
{
	static std::once_flag once;
	static ResultMsg<uint64_t> probed = fail(ENOSYS, "not probed");
	std::call_once(once, [] {
		const char *origin = nullptr;
		auto fd = create(false, origin);
		if (!fd) {
			probed = unexpectedOf(fd.error());
			return;
		}
		// The handshake can be done once per fd: this one only asks what there is.
		uffdio_api api{};
		api.api = UFFD_API;
		if (::ioctl(fd->get(), UFFDIO_API, &api) != 0)
			probed = fail(lastErrno(), fmt::format("UFFDIO_API: {}", std::strerror(errno)));
		else
			probed = api.features;
	});
	return probed;
}

ResultMsg<UserfaultFd> UserfaultFd::open(const OpenOptions &options)
{
	auto offered = kernelFeatures();
	if (!offered)
		return unexpectedOf(offered.error());
	if (uint64_t missing = options.required & ~*offered)
		return fail(ENOTSUP, "userfaultfd: this kernel lacks " + featureNames(missing));
	UserfaultFd u;
	auto fd = create(options.kernelFaults, u.origin_);
	if (!fd)
		return unexpectedOf(fd.error());
	uffdio_api api{};
	api.api = UFFD_API;
	const uint64_t asked = (options.wanted | options.required) & *offered;
	api.features = asked;
	if (::ioctl(fd->get(), UFFDIO_API, &api) != 0) {
		int e = errno;
		// EVENT_FORK needs CAP_SYS_PTRACE: say so rather than a bare EPERM.
		return fail(e, fmt::format("UFFDIO_API with {}: {}{}", featureNames(api.features), std::strerror(e),
					   e == EPERM && (api.features & UFFD_FEATURE_EVENT_FORK)
						   ? " (EVENT_FORK needs CAP_SYS_PTRACE)"
						   : ""));
	}
	u.fd_ = std::move(*fd);
	// The kernel answers with every feature it has, not the ones this fd was given: WP_ASYNC
	// among them would claim writes never fault here.
	u.features_ = asked & api.features;
	return u;
}

Result<void> UserfaultFd::registerMissing(void *addr, uint64_t len, bool writeProtect)
{
	uffdio_register reg{};
	reg.range.start = reinterpret_cast<uintptr_t>(addr);
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | (writeProtect ? UFFDIO_REGISTER_MODE_WP : 0);
	if (::ioctl(fd_.get(), UFFDIO_REGISTER, &reg) != 0)
		return unexpected(lastErrno());
	const uint64_t need = (uint64_t{ 1 } << _UFFDIO_COPY) | (uint64_t{ 1 } << _UFFDIO_WAKE)
			      | (writeProtect ? uint64_t{ 1 } << _UFFDIO_WRITEPROTECT : 0);
	if ((reg.ioctls & need) != need) {
		(void)unregister(addr, len);
		return unexpected(ENOTSUP);
	}
	return {};
}

Result<void> UserfaultFd::unregister(void *addr, uint64_t len)
{
	uffdio_range range{ reinterpret_cast<uintptr_t>(addr), len };
	if (::ioctl(fd_.get(), UFFDIO_UNREGISTER, &range) != 0)
		return unexpected(lastErrno());
	return {};
}

UserfaultFd::Copied UserfaultFd::copy(void *dst, const void *src, uint64_t len, bool writeProtect)
{
	uffdio_copy c{};
	c.dst = reinterpret_cast<uintptr_t>(dst);
	c.src = reinterpret_cast<uintptr_t>(src);
	c.len = len;
	c.mode = writeProtect ? UFFDIO_COPY_MODE_WP : 0;
	if (::ioctl(fd_.get(), UFFDIO_COPY, &c) == 0)
		return { len, 0 };
	int e = errno;
	// `copy` holds the bytes done, or a negative errno when none were.
	return { c.copy > 0 ? static_cast<uint64_t>(c.copy) : 0, e };
}

Result<void> UserfaultFd::writeProtect(void *addr, uint64_t len, bool protect)
{
	uffdio_writeprotect wp{};
	wp.range.start = reinterpret_cast<uintptr_t>(addr);
	wp.range.len = len;
	wp.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
	for (;;) {
		if (::ioctl(fd_.get(), UFFDIO_WRITEPROTECT, &wp) == 0)
			return {};
		if (errno != EINTR)
			return unexpected(lastErrno());
	}
}

Result<void> UserfaultFd::wake(void *addr, uint64_t len)
{
	uffdio_range range{ reinterpret_cast<uintptr_t>(addr), len };
	if (::ioctl(fd_.get(), UFFDIO_WAKE, &range) != 0)
		return unexpected(lastErrno());
	return {};
}

Result<void> UserfaultFd::poison(void *addr, uint64_t len)
{
	uffdio_poison p{};
	p.range.start = reinterpret_cast<uintptr_t>(addr);
	p.range.len = len;
	if (::ioctl(fd_.get(), UFFDIO_POISON, &p) != 0 && errno != EEXIST)
		return unexpected(lastErrno());
	return {};
}

Result<std::optional<uffd_msg>> UserfaultFd::read()
{
	uffd_msg msg{};
	for (;;) {
		ssize_t n = ::read(fd_.get(), &msg, sizeof msg);
		if (n == static_cast<ssize_t>(sizeof msg))
			return std::optional<uffd_msg>(msg);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return std::optional<uffd_msg>();
		return unexpected(n < 0 ? errno : EIO);
	}
}

const char *eventName(uint8_t event)
{
	switch (event) {
	case UFFD_EVENT_PAGEFAULT: return "PAGEFAULT";
	case UFFD_EVENT_FORK: return "FORK";
	case UFFD_EVENT_REMAP: return "REMAP";
	case UFFD_EVENT_REMOVE: return "REMOVE";
	case UFFD_EVENT_UNMAP: return "UNMAP";
	}
	return "unknown";
}

} // namespace r3d::uffd
