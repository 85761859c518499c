#include "region_manager.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <linux/kcmp.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "backend_opener.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "uffd/fault_server.hpp"
#include "uffd/region_protocol.hpp"
#include "uffd/uffd_region.hpp"

namespace r3mapd {

namespace {

namespace ru = r3d::uffd;

// A connecting app sends its Map request at once; a silent one costs a thread no longer.
constexpr int kRequestTimeoutMs = 10'000;
constexpr auto kUnmapWait = std::chrono::seconds(30);
// How often a tracked region's dirty pages go back to the backend unless the app says.
constexpr auto kDefaultWriteBack = std::chrono::milliseconds(5000);

auto logger()
{
	return r3d::log::get("region");
}

uint64_t pageSize()
{
	return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

void reply(int socket, const r3d::ResultMsg<void> &result, const std::string &id = {})
{
	ru::RegionReply r;
	if (result)
		r.id = id;
	else {
		Errc e = classify(result.error().code);
		r.status = static_cast<int32_t>(e);
		r.message = fmt::format("{}: {}", errorName(e), result.error().message);
	}
	(void)ru::sendRegionMessage(socket, ru::encodeReply(r));
}

bool isUserfaultfd(int fd)
{
	char link[64] = {};
	auto path = fmt::format("/proc/self/fd/{}", fd);
	ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
	return n > 0 && std::string_view(link, static_cast<size_t>(n)) == "anon_inode:[userfaultfd]";
}

// Whether [base, end) of process `pid` is mapped without a gap by VMAs registered with a
// userfaultfd for missing faults (VmFlags "um").
r3d::ResultMsg<void> checkMapping(pid_t pid, uint64_t base, uint64_t end)
{
	std::ifstream smaps(fmt::format("/proc/{}/smaps", pid));
	if (!smaps) {
		// Without CAP_SYS_PTRACE (the unit's bounding set) another uid's map is closed to
		// us: the UFFDIO_REGISTER check in admitMap() stands alone then.
		logger()->debug("cannot read the memory map of pid {}: {}", pid, std::strerror(errno));
		return {};
	}
	std::string line;
	uint64_t covered = base; // everything below is checked
	bool inRange = false;
	while (std::getline(smaps, line)) {
		uint64_t start = 0, stop = 0;
		char dash = 0;
		std::istringstream head(line);
		if ((head >> std::hex >> start >> dash >> stop) && dash == '-' && line.find(':') > line.find(' ')) {
			inRange = start < end && stop > base;
			if (inRange && start > covered)
				break; // a gap
			if (inRange)
				covered = std::max(covered, stop);
			continue;
		}
		if (inRange && line.rfind("VmFlags:", 0) == 0) {
			std::istringstream flags(line.substr(8));
			std::string f;
			bool um = false;
			while (flags >> f)
				um = um || f == "um";
			if (!um)
				return fail(Errc::InvalidArgument,
					    fmt::format("[{:#x}, {:#x}) is not registered with a userfaultfd in pid {}", base,
							end, pid));
		}
	}
	if (covered < end)
		return fail(Errc::InvalidArgument, fmt::format("[{:#x}, {:#x}) is not mapped in pid {}", base, end, pid));
	return {};
}

} // namespace

struct RegionManager::Region {
	r3d::UniqueFd connection;
	ucred peer{};
	RegionInfo info;
	std::shared_ptr<r3d::ReadWriterAt> remote;
	/// A lent source's (mount:ID, export:ID): held while the region is served.
	std::shared_ptr<void> lease;
	std::unique_ptr<ru::UffdRegion> region;
	std::thread thread;
	std::atomic<bool> done{ false };
	/// unmap() withdraws the object itself, on its worker, before its reply goes out.
	std::atomic<bool> unmapping{ false };
};

RegionManager::RegionManager(const Config &config, const AccessPolicy &access, r3d::Runtime *runtime)
	: config_(config), access_(access), runtime_(runtime)
{
}

RegionManager::~RegionManager()
{
	stopAll();
}

r3d::ResultMsg<void> RegionManager::start(const std::string &path)
{
	sockaddr_un addr{};
	if (path.empty() || path.size() >= sizeof addr.sun_path)
		return fail(Errc::InvalidArgument, fmt::format("region socket path '{}' is empty or too long", path));
	r3d::UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (!s)
		return fail(Errc::Failed, fmt::format("region socket: {}", std::strerror(errno)));
	addr.sun_family = AF_UNIX;
	std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
	::unlink(path.c_str()); // a stale socket of an earlier run
	if (::bind(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
		return fail(Errc::Failed, fmt::format("cannot listen on {}: {}", path, std::strerror(errno)));
	// Anyone may connect; the access policy decides per request, as on the bus.
	::chmod(path.c_str(), 0666);
	if (::listen(s.get(), 64) != 0)
		return fail(Errc::Failed, fmt::format("listen on {}: {}", path, std::strerror(errno)));
	stop_ = r3d::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	listen_ = std::move(s);
	path_ = path;
	acceptor_ = std::thread([this] { acceptLoop(); });
	logger()->info("serving memory regions on {}", path);
	return {};
}

void RegionManager::stopAll()
{
	std::list<std::shared_ptr<Region>> all;
	{
		std::lock_guard lock(mutex_);
		if (stopping_)
			return;
		stopping_ = true;
	}
	if (acceptor_.joinable()) {
		uint64_t one = 1;
		(void)!::write(stop_.get(), &one, sizeof one);
		acceptor_.join();
	}
	{
		std::lock_guard lock(mutex_);
		all = connections_;
	}
	for (auto &c : all)
		::shutdown(c->connection.get(), SHUT_RDWR);
	for (auto &c : all)
		if (c->thread.joinable())
			c->thread.join();
	{
		std::lock_guard lock(mutex_);
		connections_.clear();
	}
	if (!path_.empty())
		::unlink(path_.c_str());
}

void RegionManager::reap()
{
	std::list<std::shared_ptr<Region>> finished;
	{
		std::lock_guard lock(mutex_);
		for (auto it = connections_.begin(); it != connections_.end();)
			if ((*it)->done.load()) {
				finished.push_back(std::move(*it));
				it = connections_.erase(it);
			} else
				++it;
	}
	for (auto &c : finished)
		c->thread.join();
}

void RegionManager::acceptLoop()
{
	pollfd p[2] = { { listen_.get(), POLLIN, 0 }, { stop_.get(), POLLIN, 0 } };
	for (;;) {
		int n = ::poll(p, 2, 1000);
		if (n < 0 && errno != EINTR) {
			logger()->critical("region socket: poll: {}", std::strerror(errno));
			return;
		}
		if (p[1].revents)
			return;
		reap();
		if (n <= 0 || !(p[0].revents & POLLIN))
			continue;
		r3d::UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
		if (!c)
			continue;
		auto region = std::make_shared<Region>();
		socklen_t len = sizeof region->peer;
		if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &region->peer, &len) != 0) {
			logger()->warn("region socket: SO_PEERCRED: {}", std::strerror(errno));
			continue;
		}
		region->connection = std::move(c);
		std::lock_guard lock(mutex_);
		if (connections_.size() >= kMaxConnections) {
			reply(region->connection.get(),
			      fail(Errc::Busy, fmt::format("{} region connections are open already", kMaxConnections)));
			continue;
		}
		connections_.push_back(region);
		region->thread = std::thread([this, region] { serve(region); });
	}
}

r3d::ResultMsg<void> RegionManager::admitMap(Region &r, r3d::UniqueFd uffdFd, const std::vector<uint8_t> &bytes)
{
	const pid_t pid = r.peer.pid;
	Caller caller{ r.peer.uid, pid, fmt::format("region socket, pid {}", pid) };
	auto q = ru::decodeMap(bytes);
	if (!q)
		return fail(Errc::InvalidArgument, q.error().message);
	if (auto a = access_.check(caller, "MapRegion"); !a)
		return a;
	if (!uffdFd)
		return fail(Errc::InvalidArgument, "no userfaultfd came with the request (SCM_RIGHTS)");
	if (!isUserfaultfd(uffdFd.get()))
		return fail(Errc::InvalidArgument, "the fd that came with the request is not a userfaultfd");
	const uint64_t page = pageSize();
	if (q->size == 0 || q->size % page != 0 || q->size > kMaxRegionSize)
		return fail(Errc::InvalidArgument, fmt::format("the size {} is not a positive multiple of the page size {} "
							       "up to 1 TiB",
							       q->size, page));
	if (q->base == 0 || q->base % page != 0 || q->base + q->size < q->base)
		return fail(Errc::InvalidArgument, fmt::format("the address {:#x} is not page aligned", q->base));
	// The uffd must be the caller's own: the very file it holds as clientFd.
	long same = ::syscall(SYS_kcmp, pid, ::getpid(), KCMP_FILE, q->clientFd, uffdFd.get());
	if (same > 0 || (same < 0 && errno != ENOSYS && errno != EPERM))
		return fail(Errc::NotPermitted, fmt::format("the userfaultfd is not fd {} of the caller (pid {})",
							    q->clientFd, pid));
	if (auto m = checkMapping(pid, q->base, q->base + q->size); !m)
		return m;
	// Registering again with the same uffd succeeds only if [base, base+size) is mapped
	// without a hole in the uffd's own address space and registered with no other uffd.
	// The mode must be the app's own: another one would replace it.
	const bool track = q->flags & ru::kRegionTrackWrites;
	{
		uffdio_register reg{};
		reg.range.start = q->base;
		reg.range.len = q->size;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING | (track ? UFFDIO_REGISTER_MODE_WP : 0);
		if (::ioctl(uffdFd.get(), UFFDIO_REGISTER, &reg) != 0)
			return fail(Errc::InvalidArgument,
				    fmt::format("[{:#x}, {:#x}) is not a mapping of the userfaultfd's process "
						"registered with it: UFFDIO_REGISTER: {}",
						q->base, q->base + q->size, std::strerror(errno)));
		if (!(reg.ioctls & (uint64_t{ 1 } << _UFFDIO_COPY)))
			return fail(Errc::NotSupported, "the mapping takes no UFFDIO_COPY (not anonymous memory?)");
		if (track && !(reg.ioctls & (uint64_t{ 1 } << _UFFDIO_WRITEPROTECT)))
			return fail(Errc::NotSupported, "the mapping takes no UFFDIO_WRITEPROTECT: writes cannot be tracked");
	}
	{
		std::lock_guard lock(mutex_);
		for (const auto &[id, other] : regions_)
			if (other->info.pid == pid && q->base < other->info.base + other->info.size
			    && other->info.base < q->base + q->size)
				return fail(Errc::Busy, fmt::format("[{:#x}, {:#x}) overlaps region {}", q->base,
								    q->base + q->size, id));
	}
	auto backend = openSource(r, q->source, q->size, track);
	if (!backend)
		return unexpectedOf(backend.error());
	r.remote = *backend;
	r3d::MemoryRegionOptions options;
	options.background = !(q->flags & ru::kRegionNoBackground);
	if (q->remoteTimeoutMs != 0)
		options.remoteTimeout = std::chrono::milliseconds(q->remoteTimeoutMs);
	if (track) {
		// Which of the two the app's handshake decided (adopt() reads its features).
		options.tracking = r3d::RegionTracking::Auto;
		options.writeBackInterval = q->writeBackMs == ru::RegionMapRequest::kNoInterval ? std::chrono::milliseconds(0)
					    : q->writeBackMs == 0 ? kDefaultWriteBack
								  : std::chrono::milliseconds(q->writeBackMs);
	}
	auto fitted = ru::UffdRegion::fit(*backend, options);
	if (!fitted)
		return fail(Errc::BackendFailed, fitted.error().message);
	// Made with the first region: a daemon serving none keeps none of its threads.
	std::shared_ptr<ru::FaultServer> server;
	{
		std::lock_guard lock(mutex_);
		if (!server_) {
			auto created = ru::FaultServer::create();
			if (!created)
				return fail(Errc::Failed, "region fault server: " + created.error().message);
			server_ = std::move(*created);
		}
		server = server_;
	}
	auto region = ru::UffdRegion::adopt(fitted->first, q->base, q->size, fitted->second, std::move(server),
					    ru::UserfaultFd(std::move(uffdFd), q->features), pid);
	if (!region)
		return fail(region.error().code.value() == EACCES || region.error().code.value() == EPERM
				    ? Errc::NotPermitted
				    : Errc::InvalidArgument,
			    region.error().message);
	r.region = std::move(*region);
	r.info.trackingMode = r3d::trackingName(r.region->tracking());
	r.info.backendUri = q->source;
	r.info.size = q->size;
	r.info.base = q->base;
	r.info.ownerUid = r.peer.uid;
	r.info.pid = pid;
	return {};
}

r3d::ResultMsg<std::shared_ptr<r3d::ReadWriterAt>> RegionManager::openSource(Region &r, const std::string &source,
										uint64_t size, bool track)
{
	auto colon = source.find(':');
	auto lender = colon == std::string::npos ? lenders_.end() : lenders_.find(source.substr(0, colon));
	if (lender == lenders_.end())
		return openAllowedBackend(config_, source, std::nullopt, r.peer.uid, runtime_);
	const std::string id = source.substr(colon + 1);
	if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
		return fail(Errc::BadUri, fmt::format("'{}': expected {}:ID, ID the number of a {} of this r3mapd", source,
						      lender->first, lender->first));
	auto lent = lender->second(id);
	if (!lent)
		return fail(classify(lent.error().code), fmt::format("cannot map {}: {}", source, lent.error().message));
	const uint64_t has = lent->pipeline->size();
	if (size > has)
		return fail(Errc::InvalidArgument,
			    fmt::format("a region of {} bytes does not fit {}: it has {} bytes", size, lent->name, has));
	if (track && lent->readOnly)
		return fail(Errc::ReadOnly, fmt::format("{} is read-only: a tracked region writes back to it", lent->name));
	logger()->debug("region of pid {}: through the pipeline of {} ({})", r.peer.pid, lent->name, lent->backendUri);
	r.lease = std::move(lent->hold);
	return lent->pipeline;
}

void RegionManager::serve(std::shared_ptr<Region> r)
{
	const int socket = r->connection.get();
	auto first = ru::receiveRegionMessage(socket, kRequestTimeoutMs);
	r3d::ResultMsg<void> admitted;
	if (!first)
		admitted = fail(Errc::InvalidArgument, first.error().message);
	else if (first->bytes.empty())
		admitted = fail(Errc::InvalidArgument, "the connection closed before a request");
	else
		admitted = admitMap(*r, std::move(first->fd), first->bytes);
	if (!admitted) {
		logger()->warn("region request of pid {} (uid {}) refused: {}", r->peer.pid, r->peer.uid,
			       admitted.error().message);
		reply(socket, admitted);
		r->region.reset();
		r->lease.reset();
		r->done = true;
		return;
	}
	{
		std::lock_guard lock(mutex_);
		r->info.id = std::to_string(nextId_++);
		regions_[r->info.id] = r;
	}
	logger()->info("region {}: {} bytes of {} for pid {} (uid {}, tracking {})", r->info.id, r->info.size,
		       r->info.backendUri, r->info.pid, r->info.ownerUid, r->info.trackingMode);
	reply(socket, {}, r->info.id);
	if (observer_)
		observer_->regionAdded(r->info);
	for (;;) {
		auto m = ru::receiveRegionMessage(socket, -1);
		if (!m) {
			if (m.error().code.value() == EMSGSIZE || m.error().code.value() == EBADMSG) {
				reply(socket, fail(Errc::InvalidArgument, m.error().message));
				continue;
			}
			break;
		}
		if (m->bytes.empty())
			break; // the app unmapped or exited, or unmap() shut the connection
		auto type = ru::decodeType(m->bytes);
		if (!type) {
			reply(socket, fail(Errc::InvalidArgument, type.error().message));
			continue;
		}
		if (*type == ru::RegionMessage::Unmap) {
			r->region->close();
			reply(socket, {});
			break;
		}
		if (*type == ru::RegionMessage::Sync) {
			auto s = r->region->writeBack();
			reply(socket, s ? r3d::ResultMsg<void>{}
					: fail(Errc::BackendFailed, "writing back to the backend: " + s.error().message()));
			continue;
		}
		reply(socket, fail(Errc::InvalidArgument, "only Sync and Unmap are taken on a mapped region"));
	}
	// The app's library takes over its uffd when the connection closes (SIGBUS for what is
	// not present): stop serving first.
	r->region->close();
	// Served no longer: its mount or export may go (before the region is reaped).
	r->lease.reset();
	{
		std::lock_guard lock(mutex_);
		regions_.erase(r->info.id);
	}
	if (observer_ && !r->unmapping.load())
		observer_->regionRemoved(r->info.id);
	logger()->info("region {} freed (pid {})", r->info.id, r->info.pid);
	// region and remote stay until the connection is reaped: stats() and sync() may hold it.
	::shutdown(socket, SHUT_RDWR);
	r->done = true;
	changed_.notify_all();
}

std::vector<RegionInfo> RegionManager::list() const
{
	std::lock_guard lock(mutex_);
	std::vector<RegionInfo> out;
	for (const auto &[id, r] : regions_)
		out.push_back(r->info);
	return out;
}

std::optional<RegionInfo> RegionManager::find(const std::string &id) const
{
	std::lock_guard lock(mutex_);
	auto it = regions_.find(id);
	if (it == regions_.end())
		return std::nullopt;
	return it->second->info;
}

std::optional<r3d::MemoryRegionStats> RegionManager::stats(const std::string &id) const
{
	std::shared_ptr<Region> r;
	{
		std::lock_guard lock(mutex_);
		auto it = regions_.find(id);
		if (it == regions_.end())
			return std::nullopt;
		r = it->second;
	}
	if (!r->region)
		return std::nullopt;
	return r->region->stats();
}

r3d::ResultMsg<std::shared_ptr<RegionManager::Region>> RegionManager::owned(const std::string &id,
									     const Caller &caller) const
{
	std::lock_guard lock(mutex_);
	auto it = regions_.find(id);
	if (it == regions_.end())
		return fail(Errc::NotFound, fmt::format("no region {}", id));
	if (caller.uid != 0 && caller.uid != it->second->info.ownerUid)
		return fail(Errc::NotPermitted,
			    fmt::format("region {} belongs to uid {}, not to uid {}", id, it->second->info.ownerUid, caller.uid));
	return it->second;
}

r3d::ResultMsg<void> RegionManager::unmap(const std::string &id, const Caller &caller)
{
	auto r = owned(id, caller);
	if (!r)
		return unexpectedOf(r.error());
	(*r)->unmapping = true;
	::shutdown((*r)->connection.get(), SHUT_RDWR);
	{
		std::unique_lock lock(mutex_);
		if (!changed_.wait_for(lock, kUnmapWait, [&] { return (*r)->done.load(); }))
			return fail(Errc::Busy, fmt::format("region {} is still being freed", id));
	}
	if (observer_)
		observer_->regionRemoved(id);
	return {};
}

r3d::ResultMsg<void> RegionManager::sync(const std::string &id, const Caller &caller)
{
	auto r = owned(id, caller);
	if (!r)
		return unexpectedOf(r.error());
	if (!(*r)->region)
		return fail(Errc::NotFound, fmt::format("no region {}", id));
	auto s = (*r)->region->writeBack();
	if (!s)
		return fail(Errc::BackendFailed,
			    fmt::format("region {}: writing back to the backend: {}", id, s.error().message()));
	return {};
}

} // namespace r3mapd
