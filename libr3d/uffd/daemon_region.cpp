#include <r3d/daemon_region.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "uffd/orphan_guard.hpp"
#include "uffd/region_protocol.hpp"
#include "uffd/userfault_fd.hpp"

namespace r3d {
namespace {

// Opening a remote backend can take its connect timeout; the daemon answers then.
constexpr int kMapReplyTimeoutMs = 120'000;
// A flush of a remote backend may take as long.
constexpr int kReplyTimeoutMs = 120'000;

// r3mapd's Errc values on the wire (daemon/errors.hpp) as the errno an app expects.
int errnoOf(int32_t status)
{
	switch (status) {
	case 1: // InvalidArgument
	case 2: // BadUri
		return EINVAL;
	case 3: // SchemeNotAllowed
	case 8: // NotPermitted
		return EACCES;
	case 4: return EIO;     // BackendFailed
	case 6: return ENOTSUP; // NotSupported
	case 9: return ENOENT;  // NotFound
	case 10: return EBUSY;  // Busy
	case 13: return ESHUTDOWN;
	default: return EIO;
	}
}

std::string socketPathOf(const DaemonRegionOptions &options)
{
	if (!options.socketPath.empty())
		return options.socketPath;
	if (const char *env = std::getenv("R3MAP_REGION_SOCKET"); env && *env)
		return env;
	return DaemonRegionOptions::kDefaultSocket;
}

ResultMsg<UniqueFd> connectTo(const std::string &path)
{
	sockaddr_un addr{};
	if (path.size() >= sizeof addr.sun_path)
		return fail(ENAMETOOLONG, fmt::format("region socket path too long: {}", path));
	addr.sun_family = AF_UNIX;
	std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
	UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	if (!s)
		return fail(lastErrno(), fmt::format("socket: {}", std::strerror(errno)));
	if (::connect(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
		return fail(lastErrno(), fmt::format("cannot reach r3mapd at {}: {}", path, std::strerror(errno)));
	return s;
}

ResultMsg<uffd::RegionReply> awaitReply(int socket, int timeoutMs)
{
	auto m = uffd::receiveRegionMessage(socket, timeoutMs);
	if (!m)
		return fail(m.error().code, "r3mapd did not answer: " + m.error().message);
	if (m->bytes.empty())
		return fail(ECONNRESET, "r3mapd closed the connection");
	return uffd::decodeReply(m->bytes);
}

} // namespace

ResultMsg<std::unique_ptr<DaemonRegion>> DaemonRegion::map(const std::string &uri, uint64_t size,
							   const DaemonRegionOptions &options)
{
	const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
	if (size == 0 || size % page != 0)
		return fail(EINVAL, fmt::format("region: the size {} is not a positive multiple of the page size {}", size,
						page));
	if (uri.empty() || uri.size() > uffd::kMaxRegionSource)
		return fail(EINVAL, "region: the backend URI is empty or longer than 4096 bytes");
	RegionTracking tracking = options.tracking;
	if (const char *t = std::getenv("R3MAP_REGION_TRACKING"); t && *t && tracking == RegionTracking::None) {
		auto parsed = parseTracking(t);
		if (!parsed)
			return fail(EINVAL, fmt::format("region: R3MAP_REGION_TRACKING={} is not none, auto, wp-async "
							"or wp-sync",
							t));
		tracking = *parsed;
	}
	tracking = resolveTracking(tracking);
	uffd::UserfaultFd::OpenOptions uo;
	uo.wanted = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMAP
		    | UFFD_FEATURE_THREAD_ID | uffd::kFeaturePoison;
	// The handshake fixes the mode: with WP_ASYNC no write ever faults.
	if (tracking == RegionTracking::WpAsync)
		uo.required = uffd::kFeaturesWpAsync;
	uo.kernelFaults = options.kernelFaults;
	auto uffd = uffd::UserfaultFd::open(uo);
	if (!uffd)
		return unexpectedOf(uffd.error());
	void *base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return fail(lastErrno(), fmt::format("region: mmap of {} bytes: {}", size, std::strerror(errno)));
	// Unregistered first: with EVENT_UNMAP and our copy of the uffd open, a munmap would
	// wait for someone to read its event.
	auto undo = [&] {
		(void)uffd->unregister(base, size);
		::munmap(base, size);
	};
	// A child would see the pages as zeros: it gets none (SIGSEGV there).
	if (::madvise(base, size, MADV_DONTFORK) != 0) {
		auto e = lastErrno();
		undo();
		return fail(e, fmt::format("region: MADV_DONTFORK: {}", e.message()));
	}
	if (auto r = uffd->registerMissing(base, size, tracking != RegionTracking::None); !r) {
		undo();
		return fail(r.error(), fmt::format("region: UFFDIO_REGISTER: {}", r.error().message()));
	}
	auto connection = connectTo(socketPathOf(options));
	if (!connection) {
		undo();
		return unexpectedOf(connection.error());
	}
	uffd::RegionMapRequest q;
	q.base = reinterpret_cast<uintptr_t>(base);
	q.size = size;
	q.features = uffd->features();
	q.clientFd = uffd->fd();
	q.source = uri;
	const char *bg = std::getenv("R3MAP_REGION_BACKGROUND");
	if (!options.background || (bg && std::string_view(bg) == "0"))
		q.flags |= uffd::kRegionNoBackground;
	q.remoteTimeoutMs = static_cast<uint32_t>(std::clamp<int64_t>(options.remoteTimeout.count(), 0,
								     uffd::kMaxRegionRemoteTimeoutMs));
	if (const char *t = std::getenv("R3MAP_REGION_REMOTE_TIMEOUT_MS"); t && q.remoteTimeoutMs == 0)
		q.remoteTimeoutMs = static_cast<uint32_t>(
			std::min<unsigned long>(std::strtoul(t, nullptr, 10), uffd::kMaxRegionRemoteTimeoutMs));
	if (tracking != RegionTracking::None) {
		q.flags |= uffd::kRegionTrackWrites;
		int64_t ms = options.writeBackInterval.count();
		if (const char *t = std::getenv("R3MAP_REGION_WRITEBACK_MS"); t && *t && ms == 0) {
			ms = static_cast<int64_t>(std::strtoul(t, nullptr, 10));
			if (ms == 0)
				ms = -1;
		}
		q.writeBackMs = ms < 0 ? uffd::RegionMapRequest::kNoInterval
				       : static_cast<uint32_t>(std::min<int64_t>(ms, uffd::kMaxRegionWriteBackMs));
	}
	if (auto r = uffd::sendRegionMessage(connection->get(), uffd::encodeMap(q), uffd->fd()); !r) {
		undo();
		return fail(r.error(), fmt::format("region: sending the request to r3mapd: {}", r.error().message()));
	}
	auto reply = awaitReply(connection->get(), kMapReplyTimeoutMs);
	if (!reply || reply->status != 0) {
		undo();
		if (!reply)
			return unexpectedOf(reply.error());
		return fail(errnoOf(reply->status), reply->message);
	}
	std::unique_ptr<DaemonRegion> region(new DaemonRegion());
	region->base_ = static_cast<std::byte *>(base);
	region->size_ = size;
	region->tracking_ = tracking;
	region->id_ = reply->id;
	region->guard_ = std::make_unique<uffd::OrphanGuard>(std::move(*uffd), std::move(*connection),
							     reinterpret_cast<uintptr_t>(base), size);
	return region;
}

DaemonRegion::~DaemonRegion()
{
	unmap();
}

bool DaemonRegion::served() const
{
	return guard_ && !guard_->orphaned();
}

ResultMsg<void> DaemonRegion::request(std::vector<uint8_t> message)
{
	if (!guard_)
		return fail(EBADF, "region: unmapped");
	std::lock_guard lock(guard_->requestMutex());
	if (guard_->orphaned())
		return fail(ECONNRESET, "region: r3mapd no longer serves it");
	if (auto r = uffd::sendRegionMessage(guard_->connection(), message); !r)
		return fail(r.error(), fmt::format("region: talking to r3mapd: {}", r.error().message()));
	auto reply = awaitReply(guard_->connection(), kReplyTimeoutMs);
	if (!reply)
		return unexpectedOf(reply.error());
	if (reply->status != 0)
		return fail(errnoOf(reply->status), reply->message);
	return {};
}

ResultMsg<void> DaemonRegion::sync()
{
	return request(uffd::encodeHeaderOnly(uffd::RegionMessage::Sync));
}

void DaemonRegion::unmap()
{
	if (!guard_)
		return;
	// First here, while r3mapd (or the guard) still reads the uffd: munmap waits for its
	// UNMAP event to be read. Then the daemon lets go of the region.
	::munmap(base_, size_);
	if (!guard_->orphaned())
		(void)request(uffd::encodeHeaderOnly(uffd::RegionMessage::Unmap));
	guard_->stop();
	guard_.reset();
}

} // namespace r3d
