#pragma once

// A backend mapped as plain memory in this process, its faults served by r3mapd: the app
// needs no privilege beyond being allowed to use r3mapd (root or its access group), and no
// backend credentials of its own.
//
//     auto region = r3d::DaemonRegion::map("memory:?size=256M", 256 << 20);
//     std::byte *p = (*region)->data();   // read and write it like any memory
//
// The library maps anonymous private memory (MADV_DONTFORK), opens a userfaultfd
// (UFFD_USER_MODE_ONLY, falling back to /dev/userfaultfd), registers the mapping for
// MISSING faults and hands the uffd, the address, the size and the backend URI to r3mapd
// over its region socket (SCM_RIGHTS). r3mapd checks the caller (SO_PEERCRED, the same
// access policy as its D-Bus methods), opens the backend under the same rules as a mount
// and serves every fault with UFFDIO_COPY in adaptive batches (see <r3d/memory_region.hpp>
// for what faults, madvise, munmap and mremap mean: the same here). The region shows on
// D-Bus as /org/r3map/regions/ID (org.r3map.Region1). Writes stay in this process's
// memory unless tracking is asked for (DaemonRegionOptions::tracking): then the range is
// registered for write protection too and r3mapd finds the written pages (wp-async with
// PAGEMAP_SCAN on this process's pagemap, or wp-sync faults), reads them from this process
// (/proc/PID/mem) and writes them to the backend on an interval and on sync().
//
// Failure policy (docs/architecture.md, "Memory regions served by r3mapd"):
//   - a backend that keeps failing: r3mapd retries a fault for remoteTimeout, then poisons
//     the page: the touching thread gets SIGBUS, never zeros;
//   - r3mapd killed, or the region unmapped over D-Bus: the library keeps its own copy of
//     the uffd (so the kernel never drops the registration and lets pages fill with zeros)
//     and watches the connection to r3mapd; when it closes, a thread of this library takes
//     over the uffd: it wakes every waiting fault and answers each fault with UFFDIO_POISON
//     (SIGBUS to the thread where the kernel lacks it). Pages already present stay
//     readable and writable; every other touch raises SIGBUS, within milliseconds.
//   - the app exiting (or unmap()) closes the connection: r3mapd frees the region.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <r3d/memory_region.hpp>
#include <r3d/result.hpp>

namespace r3d {

namespace uffd {
class OrphanGuard;
}

struct DaemonRegionOptions {
	/// r3mapd's region socket; empty: $R3MAP_REGION_SOCKET, else kDefaultSocket.
	std::string socketPath;
	/// Pull the rest of the region in the background, behind the faults (off also with
	/// $R3MAP_REGION_BACKGROUND=0).
	bool background = true;
	/// How long r3mapd retries a fault on a failing backend before the app gets SIGBUS
	/// (up to 10 minutes); 0: r3mapd's default, 60 s. $R3MAP_REGION_REMOTE_TIMEOUT_MS
	/// sets it when this is 0.
	std::chrono::milliseconds remoteTimeout{ 0 };
	/// Trap faults from system calls too (needs /dev/userfaultfd access or privilege).
	bool kernelFaults = false;
	/// Track writes and have r3mapd write them back (Auto: wp-async where this kernel has
	/// WP_ASYNC, else wp-sync). None here: $R3MAP_REGION_TRACKING (none, auto, wp-async,
	/// wp-sync) decides, else none.
	RegionTracking tracking = RegionTracking::None;
	/// How often r3mapd writes dirty pages back: 0 its default (5 s), negative only on
	/// sync(). 0 here: $R3MAP_REGION_WRITEBACK_MS decides (0 there: only on sync()).
	std::chrono::milliseconds writeBackInterval{ 0 };
	static constexpr const char *kDefaultSocket = "/run/r3map/regions.sock";
};

class DaemonRegion
{
public:
	/// Maps `size` bytes (a positive multiple of the page size, at most the backend's
	/// size) of backend `uri`, served by r3mapd. `uri` mount:ID or export:ID maps a mount
	/// or export of that r3mapd through its pipeline (no second open of its backend). Errors carry r3mapd's message (and errno
	/// EACCES for NotPermitted, EINVAL for bad arguments, ECONNREFUSED when r3mapd does
	/// not listen, ...).
	static ResultMsg<std::unique_ptr<DaemonRegion>> map(const std::string &uri, uint64_t size,
							    const DaemonRegionOptions &options = {});
	/// unmap().
	~DaemonRegion();
	DaemonRegion(const DaemonRegion &) = delete;
	DaemonRegion &operator=(const DaemonRegion &) = delete;

	std::byte *data() const { return base_; }
	uint64_t size() const { return size_; }
	/// r3mapd's id of the region (its D-Bus object is /org/r3map/regions/ID).
	const std::string &id() const { return id_; }
	/// Asks r3mapd to write the pages written since its last write-back to the backend and
	/// sync it; replies once they are durable there. Without tracking it only syncs the
	/// backend.
	ResultMsg<void> sync();
	/// The tracking mode in use: None, WpAsync or WpSync.
	RegionTracking tracking() const { return tracking_; }
	/// Whether r3mapd still serves the region (false once its connection closed: untouched
	/// pages raise SIGBUS from then on).
	bool served() const;
	/// Unmaps the region here, then tells r3mapd, which frees it. Writes not written back
	/// yet are lost, as with munmap of private memory: sync() first. Idempotent. Threads
	/// still touching it afterwards fault like on any unmapped memory.
	void unmap();

private:
	DaemonRegion() = default;
	ResultMsg<void> request(std::vector<uint8_t> message);

	std::byte *base_ = nullptr;
	uint64_t size_ = 0;
	RegionTracking tracking_ = RegionTracking::None;
	std::string id_;
	std::unique_ptr<uffd::OrphanGuard> guard_;
};

} // namespace r3d
