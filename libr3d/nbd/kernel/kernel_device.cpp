#include "nbd/kernel/kernel_device.hpp"

#include <atomic>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <r3d/log.hpp>

#include "nbd/kernel/device_allocator.hpp"
#include "nbd/kernel/nbd_ioctl.hpp"
#include "nbd/kernel/nbd_netlink.hpp"
#include "nbd/kernel/owner_tag.hpp"
#include "nbd/kernel/ready_waiter.hpp"
#include "nbd/protocol.hpp"

namespace r3d::nbd::kernel {

namespace {

constexpr auto kPollFree = std::chrono::milliseconds(2);
constexpr auto kReclaimWait = std::chrono::seconds(3);
constexpr auto kBusyRetry = std::chrono::milliseconds(50);
// Linux 6.1 was seen (CI, guest) shutting down the sockets of a reclaimed device ~0.5 s after
// its pid file went away, which killed the connection attached right after: wait this long.
constexpr auto kReclaimSettle = std::chrono::seconds(1);

std::shared_ptr<spdlog::logger> logger()
{
	static auto l = log::get("kernel");
	return l;
}

std::string errnoText(const std::error_code &ec)
{
	return ec.message();
}

int remainingMs(KernelDevice::Clock::time_point deadline)
{
	auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - KernelDevice::Clock::now());
	return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// Until the kernel has let go of device `index` (its pid file gone), or `deadline`.
bool waitUntilFree(const SysfsDevices &devices, unsigned index, KernelDevice::Clock::time_point deadline)
{
	for (;;) {
		if (!devices.pid(index))
			return true;
		if (KernelDevice::Clock::now() >= deadline)
			return false;
		std::this_thread::sleep_for(kPollFree);
	}
}

ResultMsg<void> validate(const std::vector<int> &sockets, const AttachOptions &o)
{
	if (sockets.empty())
		return fail(EINVAL, "attach: no sockets to connect");
	uint32_t bs = o.blockSize;
	if (auto valid = checkBlockSize(bs); !valid)
		return valid;
	if (o.sizeBytes == 0)
		return fail(EINVAL, "attach: the export is empty");
	if (o.sizeBytes % bs != 0)
		return fail(EINVAL, fmt::format("export size {} is not a multiple of the block size {}", o.sizeBytes, bs));
	if (sockets.size() > 1 && !(o.transmissionFlags & kFlagCanMultiConn))
		return fail(EINVAL, "several connections need a server that allows multi-conn");
	return {};
}

} // namespace

/// State shared with the thread blocked in NBD_DO_IT, which may outlive the device
/// object if the kernel never lets it return.
struct KernelDevice::IoctlRun {
	UniqueFd done{ ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	std::atomic<int> error{ 0 };
	std::atomic<bool> finished{ false };
};

KernelDevice::KernelDevice(const AttachOptions &options)
	: devices_(options.sysRoot, options.devRoot), procRoot_(options.procRoot)
{
}

KernelDevice::~KernelDevice()
{
	if (attached_) {
		auto r = detach();
		if (!r)
			logger()->error("{}: {}", path_, r.error().message);
	}
	if (doIt_.joinable())
		doIt_.detach();
}

ResultMsg<std::unique_ptr<KernelDevice>> KernelDevice::attach(std::vector<UniqueFd> sockets, const AttachOptions &options)
{
	auto start = Clock::now();
	auto deadline = start + options.readyTimeout;
	std::vector<int> fds;
	for (const auto &s : sockets)
		fds.push_back(s.get());
	auto valid = validate(fds, options);
	if (!valid)
		return unexpectedOf(valid.error());

	std::unique_ptr<KernelDevice> device(new KernelDevice(options));
	if (!device->devices_.driverPresent())
		return fail(ENODEV, fmt::format("the nbd driver is not loaded ({}/module/nbd is missing): modprobe nbd",
						options.sysRoot));

	std::optional<NbdNetlink> netlink;
	if (options.method != AttachMethod::Ioctl) {
		auto opened = NbdNetlink::open(std::chrono::milliseconds(remainingMs(deadline)));
		if (opened)
			netlink = *opened;
		else if (options.method == AttachMethod::Netlink)
			return fail(opened.error().code, fmt::format("netlink: {}", opened.error().message));
		else
			logger()->info("netlink unavailable ({}); configuring through ioctls", opened.error().message);
	}

	auto waiter = ReadyWaiter::create(options.ready, device->devices_);
	if (!waiter)
		return unexpectedOf(waiter.error());
	device->readyMethod_ = options.ready;

	auto attached = netlink ? device->attachNetlink(*netlink, fds, options, **waiter, deadline)
				: device->attachIoctl(fds, options, **waiter, deadline);
	if (!attached)
		return unexpectedOf(attached.error());
	// Before anyone mounts it; until here only the kernel's own probes (small reads) ran,
	// and one over the cap gets a clean EINVAL from the server.
	if (auto limited = device->limitRequests(options.maxRequestBytes); !limited) {
		(void)device->detach(std::chrono::seconds(2));
		return unexpectedOf(limited.error());
	}
	device->timeToReady_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
	logger()->info("{} ready after {:.1f} ms ({}, {} readiness, {} connection{})", device->path_,
		       device->timeToReady_.count() / 1000.0, toString(device->method_), toString(device->readyMethod_),
		       fds.size(), fds.size() == 1 ? "" : "s");
	return device;
}

ResultMsg<void> KernelDevice::attachNetlink(const NbdNetlink &netlink, const std::vector<int> &sockets,
					    const AttachOptions &options, ReadyWaiter &waiter, Clock::time_point deadline)
{
	reclaimStaleWith(options, options.index, deadline, &netlink);

	ConnectRequest request;
	request.index = options.index;
	request.sockets = sockets;
	request.sizeBytes = options.sizeBytes;
	request.blockSize = options.blockSize;
	request.timeoutSeconds = static_cast<uint64_t>(options.timeout.count());
	request.deadConnTimeoutSeconds = static_cast<uint64_t>(options.deadConnTimeout.count());
	request.serverFlags = options.transmissionFlags;
	// No client flags: DISCONNECT_ON_CLOSE would drop the device whenever its last user
	// closes it, and DESTROY_ON_DISCONNECT deletes a /dev/nbdN that ioctl users expect.
	// "#N": unique per attach, so a device connected by a CONNECT whose reply was lost is
	// told from this process's other devices of the same backend.
	static std::atomic<uint64_t> attachSerial{ 0 };
	auto tag = OwnerTag::self(options.name, options.procRoot);
	tag.name += fmt::format("#{}", ++attachSerial);
	request.backendIdentifier = tag.format();
	identifier_ = request.backendIdentifier;

	auto index = netlink.connect(request);
	// A device asked for by index can be briefly open elsewhere (udev probing it after a
	// disconnect), which makes the kernel answer EBUSY: retry until the deadline.
	auto transientlyBusy = [&] {
		if (!request.index || index.error().code.value() != EBUSY || Clock::now() + kBusyRetry >= deadline)
			return false;
		auto s = devices_.state(*request.index);
		return s && !s->pid; // connected means really in use: fail at once
	};
	while (!index && transientlyBusy()) {
		std::this_thread::sleep_for(kBusyRetry);
		index = netlink.connect(request);
	}
	if (!index) {
		if (index.error().code.value() == ETIMEDOUT)
			(void)disconnectLost(netlink.withTimeout(GenericNetlink::kDefaultTimeout), devices_, identifier_);
		return unexpectedOf(index.error());
	}
	index_ = *index;
	path_ = devices_.devicePath(index_);
	method_ = AttachMethod::Netlink;
	attached_ = true;

	auto ready = waiter.wait(index_, deadline, -1);
	if (!ready) {
		auto r = detach(std::chrono::seconds(2));
		(void)r;
		return fail(ready.error(), fmt::format("{} connected but not ready ({} readiness): {}", path_,
						       toString(waiter.method()), errnoText(ready.error())));
	}
	return {};
}

ResultMsg<void> KernelDevice::reconnect(int socket, std::chrono::milliseconds timeout) const
{
	if (method_ != AttachMethod::Netlink || !attached_)
		return fail(ENOTSUP, fmt::format("{}: a device attached through ioctls cannot be given a new connection",
						 path_));
	auto netlink = NbdNetlink::open(timeout);
	if (!netlink)
		return unexpectedOf(netlink.error());
	ReconfigureRequest request;
	request.index = index_;
	request.backendIdentifier = identifier_;
	request.sockets = { socket };
	return netlink->reconfigure(request);
}

ResultMsg<void> KernelDevice::limitRequests(uint32_t maxBytes) const
{
	if (maxBytes == 0)
		return {};
	std::string file = fmt::format("{}/block/nbd{}/queue/max_sectors_kb", devices_.sysRoot(), index_);
	auto read = [&]() -> std::optional<uint64_t> {
		std::ifstream in(file);
		uint64_t kb = 0;
		if (in >> kb)
			return kb;
		return std::nullopt;
	};
	uint64_t capKb = maxBytes / 1024;
	auto current = read();
	if (!current)
		return fail(EIO, fmt::format("{}: cannot read {}", path_, file));
	if (*current <= capKb)
		return {};
	{
		std::ofstream out(file);
		out << capKb << "\n";
		out.flush();
		if (!out || read().value_or(UINT64_MAX) > capKb)
			return fail(EROFS, fmt::format("{}: the kernel sends requests of up to {} KiB, over the request cap of {} KiB, "
						       "and {} cannot be lowered (a read-only /sys, as under the systemd "
						       "unit's ProtectKernelTunables=yes?): raise the cap to {} KiB or more",
						       path_, *current, capKb, file, *current));
	}
	logger()->info("{}: requests capped at {} KiB (queue/max_sectors_kb was {})", path_, capKb, *current);
	return {};
}

std::vector<unsigned> KernelDevice::disconnectLost(const NbdNetlink &netlink, const SysfsDevices &devices,
						   const std::string &identifier)
{
	std::vector<unsigned> done;
	for (const auto &d : devices.list()) {
		if (identifier.empty() || d.backend != identifier)
			continue;
		if (auto r = netlink.disconnect(d.index); !r) {
			logger()->error("nbd{} was connected by a CONNECT whose reply was lost, and disconnecting it failed: {}",
					d.index, r.error().message);
			continue;
		}
		logger()->warn("nbd{} was connected by a CONNECT whose reply was lost: disconnected", d.index);
		done.push_back(d.index);
	}
	return done;
}

ResultMsg<void> KernelDevice::configureIoctl(int device, const std::vector<int> &sockets,
					     const AttachOptions &options, bool &owned) const
{
	NbdIoctl io(device);
	auto check = [&](Result<void> r, const char *what) -> ResultMsg<void> {
		if (!r)
			return fail(r.error(), fmt::format("{} {}: {}", what, devices_.devicePath(index_), errnoText(r.error())));
		return {};
	};
	owned = false;
	for (int socket : sockets) {
		auto r = check(io.setSocket(socket), "NBD_SET_SOCK on");
		if (!r)
			return r;
		// The kernel now ties the device's setup to this thread: the device is ours.
		owned = true;
	}
	uint64_t timeout = static_cast<uint64_t>(options.timeout.count());
	ResultMsg<void> r = check(io.setBlockSize(options.blockSize), "NBD_SET_BLKSIZE on");
	if (r)
		r = check(io.setSizeBlocks(options.sizeBytes / options.blockSize), "NBD_SET_SIZE_BLOCKS on");
	if (r)
		r = check(io.setFlags(options.transmissionFlags), "NBD_SET_FLAGS on");
	if (r)
		r = check(io.setTimeout(timeout), "NBD_SET_TIMEOUT on");
	return r;
}

ResultMsg<void> KernelDevice::attachIoctl(const std::vector<int> &sockets, const AttachOptions &options,
					  ReadyWaiter &waiter, Clock::time_point deadline)
{
	// The ioctl interface has no dead-connection timeout or backend identifier.
	if (options.index)
		reclaimStale(options, options.index, deadline);
	DeviceAllocator allocator(devices_);
	std::set<unsigned> skip;
	for (;;) {
		if (Clock::now() >= deadline)
			return fail(ETIMEDOUT, "no free nbd device could be set up in time");
		auto locked = options.index ? allocator.lock(*options.index) : allocator.lockFree(skip);
		if (!locked)
			return unexpectedOf(locked.error());
		index_ = locked->index;
		path_ = devices_.devicePath(index_);
		bool owned = false;
		auto configured = configureIoctl(locked->lock.fd(), sockets, options, owned);
		if (configured) {
			lock_.emplace(std::move(locked->lock));
			break;
		}
		// Never CLEAR_SOCK a device whose setup belongs to someone else: it would tear
		// down their connection (the kernel does not check who asks).
		if (owned)
			(void)NbdIoctl(locked->lock.fd()).clearSocket();
		// EBUSY: another task set the device up between our scan and our SET_SOCK.
		if (configured.error().code.value() != EBUSY || options.index)
			return configured;
		logger()->debug("{} taken meanwhile, trying the next device", path_);
		skip.insert(index_);
	}
	method_ = AttachMethod::Ioctl;
	// From here NBD_SET_SOCK by anyone else fails with EBUSY; udevd needs the lock gone.
	lock_->unlock();

	run_ = std::make_shared<IoctlRun>();
	if (!run_->done)
		return fail(errno, "eventfd failed");
	doIt_ = std::thread([run = run_, fd = lock_->fd()] {
		// Any signal that interrupts NBD_DO_IT makes the kernel tear the device down, so
		// this thread takes none (SIGSTOP and SIGKILL still do: a reason to prefer netlink).
		sigset_t all;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, nullptr);
		auto r = NbdIoctl(fd).doIt();
		run->error = r ? 0 : r.error().value();
		run->finished = true;
		uint64_t one = 1;
		(void)!::write(run->done.get(), &one, sizeof(one));
	});
	attached_ = true;

	auto ready = waiter.wait(index_, deadline, run_->done.get());
	if (ready)
		return {};
	if (ready.error().value() == ECANCELED) {
		attached_ = false;
		doIt_.join();
		(void)NbdIoctl(lock_->fd()).clearSocket();
		lock_.reset();
		int err = run_->error ? run_->error.load() : EIO;
		return fail(err, fmt::format("NBD_DO_IT on {} failed: {}", path_, std::strerror(err)));
	}
	auto r = detach(std::chrono::seconds(2));
	(void)r;
	return fail(ready.error(), fmt::format("{} was set up but not ready ({} readiness): {}", path_,
					       toString(waiter.method()), errnoText(ready.error())));
}

ResultMsg<void> KernelDevice::stopIoctl(Clock::time_point deadline)
{
	NbdIoctl io(lock_->fd());
	(void)io.clearQueue();
	auto disconnected = io.disconnect();
	if (!disconnected && disconnected.error().value() != EINVAL)
		logger()->warn("NBD_DISCONNECT on {}: {}", path_, errnoText(disconnected.error()));
	pollfd pfd{ run_->done.get(), POLLIN, 0 };
	while (!run_->finished) {
		int n = ::poll(&pfd, 1, remainingMs(deadline));
		if (n == 0) {
			// The kernel keeps NBD_DO_IT blocked until the server closes the socket; the
			// thread keeps its own reference to the state and is left behind.
			doIt_.detach();
			return fail(ETIMEDOUT, fmt::format("{}: NBD_DO_IT did not return after the disconnect", path_));
		}
	}
	doIt_.join();
	(void)io.clearSocket();
	lock_.reset();
	return {};
}

ResultMsg<void> KernelDevice::detach(std::chrono::milliseconds timeout)
{
	if (!attached_)
		return {};
	attached_ = false;
	auto deadline = Clock::now() + timeout;
	if (method_ == AttachMethod::Netlink) {
		// Someone may have disconnected the device from outside and another attach taken
		// it since: never disconnect a device that is no longer ours.
		if (auto s = devices_.state(index_); !s || !s->pid || s->backend != identifier_) {
			logger()->warn("{} was disconnected from outside", path_);
			return {};
		}
		auto netlink = NbdNetlink::open(timeout);
		if (!netlink)
			return unexpectedOf(netlink.error());
		auto r = netlink->disconnect(index_);
		if (!r)
			return r;
	} else {
		auto r = stopIoctl(deadline);
		if (!r)
			return r;
	}
	if (!waitFree(deadline))
		return fail(EBUSY, fmt::format("{} is disconnected but still held open (mounted?)", path_));
	logger()->info("{} detached", path_);
	return {};
}

bool KernelDevice::waitFree(Clock::time_point deadline) const
{
	return waitUntilFree(devices_, index_, deadline);
}

bool KernelDevice::inUse() const
{
	UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
	return !fd && errno == EBUSY;
}

std::vector<std::string> KernelDevice::mountpointsIn(const std::string &mountinfo, dev_t rdev)
{
	// "36 35 43:0 / /mnt/a\040b rw,relatime shared:1 - ext4 /dev/nbd0 rw": the third
	// field is major:minor, the fifth the mountpoint with space, tab, newline and backslash
	// as octal escapes.
	std::vector<std::string> out;
	std::istringstream lines(mountinfo);
	std::string line;
	const std::string device = fmt::format("{}:{}", major(rdev), minor(rdev));
	while (std::getline(lines, line)) {
		std::istringstream fields(line);
		std::string id, parent, majorMinor, root, mountpoint;
		if (!(fields >> id >> parent >> majorMinor >> root >> mountpoint) || majorMinor != device)
			continue;
		std::string unescaped;
		auto octal = [&](size_t i) { return mountpoint[i] >= '0' && mountpoint[i] <= '7'; };
		for (size_t i = 0; i < mountpoint.size(); ++i) {
			if (mountpoint[i] == '\\' && i + 3 < mountpoint.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
				unescaped += static_cast<char>(std::stoi(mountpoint.substr(i + 1, 3), nullptr, 8));
				i += 3;
			} else {
				unescaped += mountpoint[i];
			}
		}
		out.push_back(std::move(unescaped));
	}
	return out;
}

std::vector<std::string> KernelDevice::mountpoints() const
{
	struct stat st {};
	if (::stat(path_.c_str(), &st) != 0 || !S_ISBLK(st.st_mode))
		return {};
	std::ifstream in(procRoot_ + "/self/mountinfo");
	std::stringstream text;
	text << in.rdbuf();
	return mountpointsIn(text.str(), st.st_rdev);
}

ResultMsg<std::vector<std::string>> KernelDevice::syncMounted() const
{
	struct stat device {};
	if (::stat(path_.c_str(), &device) != 0)
		return fail(errno, fmt::format("cannot stat {}: {}", path_, std::strerror(errno)));
	std::vector<std::string> synced, failed;
	int firstError = 0;
	for (const auto &mountpoint : mountpoints()) {
		UniqueFd fd(::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
		struct stat st {};
		int err = 0;
		if (!fd || ::fstat(fd.get(), &st) != 0)
			err = errno;
		else if (st.st_dev != device.st_rdev)
			err = EXDEV; // another mount hides it from us
		else if (::syncfs(fd.get()) != 0)
			err = errno;
		if (err == 0) {
			logger()->info("{}: synced the filesystem mounted at {}", path_, mountpoint);
			synced.push_back(mountpoint);
		} else {
			failed.push_back(fmt::format("{} ({})", mountpoint, std::strerror(err)));
			firstError = firstError ? firstError : err;
		}
	}
	if (!failed.empty())
		return fail(firstError, fmt::format("{}: cannot sync the filesystem at {}", path_, fmt::join(failed, ", ")));
	return synced;
}

ResultMsg<void> KernelDevice::flush() const
{
	UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd)
		return fail(errno, fmt::format("cannot open {}: {}", path_, std::strerror(errno)));
	if (::fsync(fd.get()) != 0)
		return fail(errno, fmt::format("fsync {}: {}", path_, std::strerror(errno)));
	return {};
}

std::vector<unsigned> KernelDevice::reclaimStale(const AttachOptions &options, std::optional<unsigned> only,
						 Clock::time_point deadline)
{
	return reclaimStaleWith(options, only, deadline, nullptr);
}

std::vector<unsigned> KernelDevice::reclaimStaleWith(const AttachOptions &options, std::optional<unsigned> only,
						     Clock::time_point deadline, const NbdNetlink *known)
{
	std::vector<unsigned> reclaimed;
	SysfsDevices devices(options.sysRoot, options.devRoot);
	std::vector<NbdDeviceState> candidates;
	if (!only) {
		candidates = devices.list();
	} else if (auto s = devices.state(*only)) {
		candidates.push_back(*s);
	}
	std::optional<NbdNetlink> opened;
	for (const auto &d : candidates) {
		if (!d.pid)
			continue;
		auto tag = OwnerTag::parse(d.backend);
		if (!tag || tag->alive(options.procRoot))
			continue;
		if (Clock::now() >= deadline) {
			logger()->warn("no time left to reclaim more devices left behind by dead processes");
			break;
		}
		if (!known) {
			auto timeout = deadline == Clock::time_point::max()
					       ? GenericNetlink::kDefaultTimeout
					       : std::chrono::milliseconds(remainingMs(deadline));
			auto family = NbdNetlink::open(timeout);
			if (!family)
				return reclaimed;
			known = &opened.emplace(*family);
		}
		logger()->warn("nbd{} was left connected by process {} which is gone: disconnecting it", d.index, tag->pid);
		if (auto r = known->disconnect(d.index); !r) {
			logger()->warn("{}", r.error().message);
			continue;
		}
		if (waitUntilFree(devices, d.index, std::min(deadline, Clock::now() + kReclaimWait))) {
			reclaimed.push_back(d.index);
			std::this_thread::sleep_until(std::min(deadline, Clock::now() + kReclaimSettle));
		} else
			logger()->warn("nbd{} is disconnected but still held open", d.index);
	}
	return reclaimed;
}

} // namespace r3d::nbd::kernel
