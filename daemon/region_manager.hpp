#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include <r3d/memory_region.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "access_policy.hpp"
#include "pipeline_lease.hpp"

namespace r3d {
class Runtime;
namespace uffd {
class FaultServer;
}
} // namespace r3d

namespace r3mapd {

struct Config;

/// A snapshot of one memory region served for an app.
struct RegionInfo {
	std::string id;
	std::string backendUri;
	uint64_t size = 0;
	uint64_t base = 0; ///< in the app
	uid_t ownerUid = static_cast<uid_t>(-1);
	pid_t pid = 0;
	/// How writes are tracked: "none" (nothing is written back), "wp-async" or "wp-sync".
	std::string trackingMode = "none";
};

class RegionObserver
{
public:
	virtual ~RegionObserver() = default;
	virtual void regionAdded(const RegionInfo &info) = 0;
	virtual void regionRemoved(const std::string &id) = 0;
};

/// Memory regions of apps, served here (the client is r3d::DaemonRegion): a SOCK_SEQPACKET
/// socket takes one connection per region carrying a Map request with the app's
/// userfaultfd (libr3d/uffd/region_protocol.hpp). Each connection has a thread of its own
/// that checks the request, opens the backend (which may block) and then waits for Sync,
/// Unmap or the app going away; faults are served by a FaultServer of this manager, never
/// on the bus thread nor on these threads.
///
/// Checks, each failing with a clear error on the connection (the daemon goes on):
/// the caller (SO_PEERCRED uid) passes the AccessPolicy and the backend rules of a mount
/// (openAllowedBackend() for that uid); the fd is a userfaultfd, held by the caller itself
/// (kcmp) and registered over exactly the caller's own mapping [base, base+size) (the
/// range's VMAs in /proc/PID/smaps carry the uffd-missing flag); base and size are page
/// multiples, the size neither 0 nor above kMaxRegionSize; the range overlaps no region
/// already served for that process.
///
/// A request with kRegionTrackWrites has its writes tracked (the app's handshake chose
/// wp-async or wp-sync) and written back on its interval (default 5 s) and on Sync: read
/// from the app through /proc/PID/mem, and with wp-async found through /proc/PID/pagemap.
/// Both need ptrace access to the app: the same uid, or CAP_SYS_PTRACE.
///
/// A source SCHEME:ID with a lender for SCHEME (mount:3, export:2; see lendFrom()) is not
/// opened: the region reads and writes through that mount's or export's pipeline, and
/// holds it (it cannot go away) until the region is freed. Refused: an unknown id
/// (NotFound), a lender going away (Busy), a size above the lender's (InvalidArgument),
/// tracking on a read-only one (ReadOnly).
class RegionManager
{
public:
	static constexpr uint64_t kMaxRegionSize = uint64_t{ 1 } << 40;
	static constexpr unsigned kMaxConnections = 256;

	RegionManager(const Config &config, const AccessPolicy &access, r3d::Runtime *runtime = nullptr);
	~RegionManager();
	RegionManager(const RegionManager &) = delete;
	RegionManager &operator=(const RegionManager &) = delete;

	void setObserver(RegionObserver *observer) { observer_ = observer; }
	/// Region sources "SCHEME:ID" are lent by `lender` (given the ID). Before start().
	using Lender = PipelineLender;
	void lendFrom(const std::string &scheme, Lender lender) { lenders_[scheme] = std::move(lender); }
	/// Listens on `path` (replacing a stale socket there), mode 0666: the access policy
	/// decides, per connection.
	r3d::ResultMsg<void> start(const std::string &path);
	/// Frees every region (their apps see the connection close: SIGBUS on pages not
	/// present) and stops listening. Idempotent.
	void stopAll();

	std::vector<RegionInfo> list() const;
	std::optional<RegionInfo> find(const std::string &id) const;
	std::optional<r3d::MemoryRegionStats> stats(const std::string &id) const;
	/// Stops serving region `id` and closes its connection; returns once it is freed.
	/// Only its owner or root (NotPermitted otherwise).
	r3d::ResultMsg<void> unmap(const std::string &id, const Caller &caller);
	/// Writes the region's dirty pages back and syncs its backend (only syncs it without
	/// tracking). Only its owner or root.
	r3d::ResultMsg<void> sync(const std::string &id, const Caller &caller);

	struct Region;

private:
	void acceptLoop();
	void serve(std::shared_ptr<Region> region);
	r3d::ResultMsg<void> admitMap(Region &region, r3d::UniqueFd uffdFd, const std::vector<uint8_t> &request);
	/// The backend of a region's source: opened, or lent (then `region` holds the lease).
	r3d::ResultMsg<std::shared_ptr<r3d::ReadWriterAt>> openSource(Region &region, const std::string &source,
								      uint64_t size, bool track);
	r3d::ResultMsg<std::shared_ptr<Region>> owned(const std::string &id, const Caller &caller) const;
	void reap();

	const Config &config_;
	const AccessPolicy &access_;
	r3d::Runtime *runtime_;
	RegionObserver *observer_ = nullptr;
	std::map<std::string, Lender> lenders_;
	std::string path_;
	r3d::UniqueFd listen_;
	r3d::UniqueFd stop_; ///< eventfd ending acceptLoop()
	std::thread acceptor_;
	std::shared_ptr<r3d::uffd::FaultServer> server_;

	mutable std::mutex mutex_;
	std::condition_variable changed_;
	uint64_t nextId_ = 1;
	bool stopping_ = false;
	std::map<std::string, std::shared_ptr<Region>> regions_; ///< served ones, by id
	std::list<std::shared_ptr<Region>> connections_;        ///< every connection, served or not
};

} // namespace r3mapd
