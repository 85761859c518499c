#pragma once

// A memory region served from a backend through a userfaultfd: the mapping, its uffd, the
// Puller that fills it (with UffdCache as its cache) and what each uffd message means.
//
//   app touches a missing page ─▶ PAGEFAULT ─▶ FaultServer worker ─▶ Puller::demand(run)
//        ▲                                                              │ remote->readAt
//        └──────────── woken by UFFDIO_COPY ◀── UffdCache::writeAt ◀────┘
//
// Events (read on the FaultServer's thread, which the causing thread waits for):
//   REMOVE (madvise DONTNEED/REMOVE): the app threw those pages away. Their chunks go back
//       to remote, so the next touch pulls the backend's bytes again; what the app wrote
//       there is lost, as DONTNEED loses it on any anonymous memory (nothing is written back
//       yet). Pages of those chunks still present keep their contents (copies skip them).
//   UNMAP (munmap, or mremap shrinking): the addresses leave the region; nothing is copied
//       there again, and chunks left with no address are settled as present so nothing
//       pulls them.
//   REMAP (mremap moving): the pages moved with their contents; the region follows them.
//   FORK (only with followFork): the child's uffd arrives; a child region serves the child's
//       copy from the same backend (its own chunk states, demand only), until this region
//       is unmapped. Without followFork the mapping is MADV_DONTFORK.
// A fault on a chunk the states call present is either one a copy just resolved (the page is
// there: wake) or one whose pages were discarded while a pull was in flight (REMOVE racing
// the copy): then the chunk is pulled again.
// A pull that fails for remoteTimeout poisons the faulting page (SIGBUS), see
// <r3d/memory_region.hpp>.
//
// Write tracking (options.tracking): the range is registered for WP too and every copy lands
// write-protected, so the first write to a page is seen. wp-async: the kernel lifts the
// protection itself and PAGEMAP_SCAN finds (and re-protects) the written pages; wp-sync: the
// write faults here, the page is marked in dirty_ and its protection lifted (which wakes the
// writer). writeBack() takes the dirty set and protects it again BEFORE reading the pages, so
// a write racing the copy is in the next round, then writes whole chunks to the backend
// (pulling the rest of a chunk first if it is not present) and syncs the backend.
// A chunk that could not be written stays in unwritten_ for the next round.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include <r3d/memory_region.hpp>
#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "stages/puller.hpp"
#include "stages/sync_context.hpp"
#include "uffd/fault_server.hpp"
#include "uffd/pagemap_scanner.hpp"
#include "uffd/segment_map.hpp"
#include "uffd/uffd_cache.hpp"
#include "uffd/userfault_fd.hpp"

namespace r3d::uffd {

class UffdRegion final : public FaultServer::Source
{
public:
	/// Maps `size` bytes (a page multiple, at most remote->size()) served from `remote`,
	/// which takes reads of whole chunks (see chunkFor()).
	static ResultMsg<std::unique_ptr<UffdRegion>> create(std::shared_ptr<ReadWriterAt> remote, uint64_t size,
							     const MemoryRegionOptions &options,
							     std::shared_ptr<FaultServer> server);
	~UffdRegion() override;
	UffdRegion(const UffdRegion &) = delete;
	UffdRegion &operator=(const UffdRegion &) = delete;

	/// Serves a mapping of another process (r3mapd serving an app): `uffd` is that
	/// process's userfaultfd, its handshake done with `uffd.features()` and [base,
	/// base+size) registered for MISSING faults by the app. Nothing is mapped or unmapped
	/// here; close() only stops serving (the app's own copy of the uffd decides what its
	/// threads see then, see DaemonRegion). `pid` is the app's, for SIGBUS without POISON.
	static ResultMsg<std::unique_ptr<UffdRegion>> adopt(std::shared_ptr<ReadWriterAt> remote, uintptr_t base,
							    uint64_t size, const MemoryRegionOptions &options,
							    std::shared_ptr<FaultServer> server, UserfaultFd uffd,
							    pid_t pid);

	/// `source` in the pipeline a region pulls through (whole chunks), and the options
	/// adjusted to a backend of a coarser granularity.
	static ResultMsg<std::pair<std::shared_ptr<ReadWriterAt>, MemoryRegionOptions>>
	fit(std::shared_ptr<ReadWriterAt> source, const MemoryRegionOptions &options);

	/// The chunk a region with these options tracks and pulls at.
	static uint64_t chunkFor(const MemoryRegionOptions &options);

	std::byte *data() const { return base_; }
	uint64_t size() const { return ctx_.geometry.size; }
	MemoryRegionStats stats() const;
	/// See MemoryRegion::unmap().
	void close();

	void onReadable() override;

	/// The tracking mode in use (None, WpAsync or WpSync).
	RegionTracking tracking() const { return tracking_; }
	/// Writes the dirty pages back and syncs the backend (see above); without tracking only
	/// syncs it. Safe from any thread but the fault server's.
	Result<void> writeBack();

private:
	UffdRegion(std::shared_ptr<ReadWriterAt> remote, uint64_t size, uint64_t chunk, const MemoryRegionOptions &options,
		   std::shared_ptr<FaultServer> server, UserfaultFd uffd, std::byte *base,
		   std::vector<SegmentMap::Segment> segments);
	/// Starts serving (registered with the server, workers running).
	Result<void> start();

	void handleFault(uintptr_t addr, uint32_t tid);
	/// The chunks [first, last] a fault on chunk `c` pulls.
	std::pair<uint64_t, uint64_t> runFor(uint64_t c);
	void giveUp(uintptr_t page, uint32_t tid, const std::error_code &error);
	void onRemove(uintptr_t start, uintptr_t end);
	void onUnmap(uintptr_t start, uintptr_t end);
	void onFork(int ufd);
	/// A fault on a chunk called present in another address space (no mincore there):
	/// copy that page again from the backend; EEXIST means it was there, so just wake.
	void refillPage(uintptr_t addr, uint64_t chunk);
	/// A write to a protected page (wp-sync): record it, lift the protection.
	void onWriteFault(uintptr_t addr);
	/// Lifts or sets the protection of [addr, addr+len), waiting out EAGAIN (never on the
	/// reader thread: it is the one that settles it).
	Result<void> protect(uintptr_t addr, uint64_t len, bool on);
	/// Moves the pages written since the last call into unwritten_ (protecting them again).
	Result<void> collectDirty();
	/// Reads chunk `c` from the mapping (this process's or the app's).
	Result<void> readChunk(uint64_t c, std::span<std::byte> buf);
	void writeBackLoop();

	MemoryRegionOptions options_;
	std::shared_ptr<FaultServer> server_;
	UserfaultFd uffd_;
	std::string origin_; ///< how uffd_ was made, for stats
	std::byte *base_;
	uint64_t page_;
	SegmentMap segments_;
	std::atomic<bool> closing_{ false };
	stages::SyncContext ctx_;
	std::shared_ptr<UffdCache> cache_;
	std::unique_ptr<stages::Puller> puller_;
	bool child_ = false;
	pid_t foreignPid_ = 0; ///< the app's pid when the mapping is another process's

	// Adaptive batching: the run the last fault pulled.
	std::mutex runMutex_;
	uint64_t runStart_ = 0;
	uint64_t runEnd_ = UINT64_MAX; ///< one past its last chunk
	uint64_t run_ = 1;             ///< its length in chunks

	std::mutex pendingMutex_;
	std::condition_variable pendingDone_;
	uint64_t pending_ = 0; ///< fault jobs posted and not finished

	std::mutex closeMutex_;
	bool closed_ = false;
	std::vector<std::unique_ptr<UffdRegion>> children_; ///< forked children (reader thread only)

	// Write tracking.
	RegionTracking tracking_ = RegionTracking::None;
	std::optional<PagemapScanner> scanner_;               ///< wp-async
	UniqueFd memFd_;                                      ///< /proc/PID/mem of a foreign app
	std::unique_ptr<std::atomic<uint64_t>[]> dirty_;       ///< wp-sync: a bit per page
	uint64_t dirtyWords_ = 0;
	std::mutex writeBackMutex_;                           ///< one round at a time
	std::vector<bool> unwritten_;                           ///< chunks to write (writeBackMutex_)
	std::atomic<uint64_t> unwrittenChunks_{ 0 };
	std::mutex intervalMutex_;
	std::condition_variable intervalWake_;
	bool intervalStop_ = false;
	std::thread intervalThread_;
	std::atomic<uint64_t> writtenBack_{ 0 }, writeBacks_{ 0 }, writeFaults_{ 0 };

	std::atomic<uint64_t> faults_{ 0 }, faultPulls_{ 0 }, poisoned_{ 0 };
	std::atomic<uint64_t> removes_{ 0 }, unmaps_{ 0 }, remaps_{ 0 }, forks_{ 0 };
};

} // namespace r3d::uffd
