#pragma once

// A backend mapped as plain memory in this process, pulled on first touch.
//
//     auto region = r3d::MemoryRegion::map("r3://host:7700/state", 1 << 30);
//     std::byte *p = (*region)->data();   // read and write it like any memory
//
// The library maps anonymous private memory, registers it with a userfaultfd for MISSING
// faults and serves each fault from the backend with UFFDIO_COPY, through the same Puller
// that fills a managed mount's cache: faults on one chunk share one pull, sequential faults
// are served in growing runs (adaptive batching) and, unless turned off, the rest of the
// region streams in behind them. Writes stay in the region's memory unless tracking is asked
// for (MemoryRegionOptions::tracking): then the pages written are found by write protection
// and written back to the backend on an interval and on sync().
//
// What the app sees:
//   - a page's first touch waits for its pull; afterwards it is ordinary memory;
//   - madvise(MADV_DONTNEED) on part of the region discards it: what the app wrote there is
//     gone, and the next touch reads the backend's bytes again (not zeros);
//   - munmap of part of the region stops serving that part; mremap moves it along;
//   - fork(): without followFork the region is not inherited (MADV_DONTFORK: the child gets
//     SIGSEGV there instead of zero pages); with followFork (needs CAP_SYS_PTRACE) the child's
//     copy is served from the same backend too;
//   - a pull that keeps failing for remoteTimeout: the touching thread gets SIGBUS for that
//     page (UFFDIO_POISON, kernel 6.6+; on older kernels SIGBUS is sent to the thread), and
//     the page keeps raising SIGBUS until discarded with MADV_DONTNEED. Never zeros, never a
//     wait without end;
//   - with the user-mode-only uffd (the default when /dev/userfaultfd is not usable), a system
//     call given a page not pulled yet (write(fd, p, n)) fails with EFAULT: touch it first, or
//     ask for kernelFaults.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

namespace r3d {

namespace uffd {
class UffdRegion;
}

enum class FaultBatching {
	/// A fault pulls `chunk`; each fault right after the last run doubles the run, up to
	/// maxRun; a fault elsewhere starts again at `chunk`.
	Adaptive,
	/// Every fault pulls the aligned block of fixedRun bytes around it (4 KiB: one page per
	/// fault, the userfaultfd-go design).
	Fixed,
};

/// How a region finds the pages the app wrote, to write them back.
enum class RegionTracking {
	/// Not at all: writes stay in memory, sync() only flushes the backend.
	None,
	/// WpAsync where the kernel has it, else WpSync.
	Auto,
	/// UFFD_FEATURE_WP_ASYNC + WP_UNPOPULATED (6.7+): the kernel lifts a page's protection
	/// on its first write without a message; PAGEMAP_SCAN finds and re-protects those pages
	/// in one walk. The first write costs ~1.5 us.
	WpAsync,
	/// Synchronous write-protect faults (any kernel with uffd WP, 5.7+): the first write to
	/// a protected page waits until the handler records it and lifts the protection (a
	/// round trip through the fault server, tens of microseconds).
	WpSync,
};

/// "none", "wp-async", "wp-sync" ("auto" for Auto, before it is resolved).
const char *trackingName(RegionTracking tracking);
/// The reverse of trackingName(); nullopt for anything else.
std::optional<RegionTracking> parseTracking(std::string_view name);
/// What Auto means on this kernel: WpAsync when it offers WP_ASYNC and WP_UNPOPULATED.
RegionTracking resolveTracking(RegionTracking tracking);

struct MemoryRegionOptions {
	FaultBatching batching = FaultBatching::Adaptive;
	/// The smallest unit pulled and tracked (Adaptive); a multiple of the page size.
	uint64_t chunk = 64 * 1024;
	/// The largest run one fault pulls (Adaptive).
	uint64_t maxRun = 2u << 20;
	/// What every fault pulls (Fixed); a multiple of the page size.
	uint64_t fixedRun = 4096;
	/// Also queue the Puller's follow-on windows ahead of sequential faults (its workers
	/// fill them while the app works). In uffd_bench it cuts the sequential fault latency
	/// 5-10x (p50 and p99) but costs 20-40 % of the throughput, hence off by default.
	bool readahead = false;
	/// Pull the whole region in the background, behind the faults.
	bool background = true;
	unsigned pullWorkers = 2;
	/// How long a fault keeps retrying a failing backend before the app gets SIGBUS.
	std::chrono::milliseconds remoteTimeout{ 60000 };
	/// Serve forked children too (UFFD_FEATURE_EVENT_FORK; needs CAP_SYS_PTRACE).
	bool followFork = false;
	/// Trap faults from system calls too (/dev/userfaultfd, or the syscall without
	/// UFFD_USER_MODE_ONLY; both need privilege).
	bool kernelFaults = false;
	/// Track the app's writes and write them back (see RegionTracking).
	RegionTracking tracking = RegionTracking::None;
	/// How often dirty pages are written back while tracking (0: only on sync()).
	std::chrono::milliseconds writeBackInterval{ 5000 };
};

struct MemoryRegionStats {
	uint64_t faults = 0;      ///< page-fault messages served
	uint64_t faultPulls = 0;  ///< of which started a pull (the others found one in flight or done)
	uint64_t pulledBytes = 0; ///< from the backend, faults and background alike
	uint64_t presentBytes = 0; ///< chunks in the region now
	uint64_t poisonedPages = 0; ///< pages given up on (SIGBUS)
	uint64_t removes = 0, unmaps = 0, remaps = 0, forks = 0; ///< events seen
	std::string uffdOrigin; ///< how the userfaultfd was made
	std::string trackingMode = "none"; ///< trackingName() of the mode in use
	uint64_t dirtyBytes = 0;     ///< written by the app, not yet on the backend (whole pages)
	uint64_t writtenBackBytes = 0; ///< written back to the backend so far
	uint64_t writeBacks = 0;     ///< write-back rounds done (interval and sync())
};

class MemoryRegion
{
public:
	/// Opens `uri` with openBackend() and maps its first `size` bytes (0: all of it). The
	/// size must be a multiple of the page size and fit the backend.
	static ResultMsg<std::unique_ptr<MemoryRegion>> map(const std::string &uri, uint64_t size = 0,
							    const MemoryRegionOptions &options = {});
	/// The same over a backend or pipeline the caller opened.
	static ResultMsg<std::unique_ptr<MemoryRegion>> map(std::shared_ptr<ReadWriterAt> source, uint64_t size = 0,
							    const MemoryRegionOptions &options = {});
	/// unmap().
	~MemoryRegion();
	MemoryRegion(const MemoryRegion &) = delete;
	MemoryRegion &operator=(const MemoryRegion &) = delete;

	/// Where the region was mapped (an mremap by the app moves it; serving follows).
	std::byte *data() const;
	uint64_t size() const;
	MemoryRegionStats stats() const;
	/// Writes the pages written since the last write-back to the backend, then syncs it;
	/// returns once they are durable there. Without tracking, only syncs the backend.
	ResultMsg<void> sync();
	/// Stops serving and unmaps what is left of the region (waiting for a write-back under
	/// way; writes not written back yet are lost: sync() first). Idempotent. Threads still
	/// touching it afterwards fault like on any unmapped memory.
	void unmap();

private:
	explicit MemoryRegion(std::unique_ptr<uffd::UffdRegion> region);
	std::unique_ptr<uffd::UffdRegion> region_;
};

} // namespace r3d
