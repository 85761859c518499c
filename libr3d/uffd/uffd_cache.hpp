#pragma once

// The cache a memory region's Puller fills: the region's own pages. writeAt() is
// UFFDIO_COPY of the fetched bytes into the mapping, which also wakes the threads faulting
// on them; readAt() reads the mapping. So the Puller, ChunkState and the region share the
// one pull machinery of managed mounts (demand coalescing, follow-on windows, background
// order) and the region adds only what is particular to page faults.
//
// Copy rules: a page already present (EEXIST) is left alone: it was copied before, or
// written by the app after a pull, or is poisoned; the rest of the run still goes in. EAGAIN
// (an event is queued and the layout is changing) is retried after a short sleep, while the
// fault server's thread reads the event. Bytes for addresses no longer mapped (munmap,
// ENOENT) are dropped, and so is everything once the region closes. A copy into an address
// space that is gone (a forked child that exited) fails with ECANCELED.

#include <atomic>
#include <cstdint>

#include <r3d/read_writer_at.hpp>

#include "uffd/segment_map.hpp"
#include "uffd/userfault_fd.hpp"

namespace r3d::uffd {

class UffdCache final : public ReadWriterAt
{
public:
	/// Borrows all three from the region, which outlives this cache's users.
	UffdCache(UserfaultFd &uffd, const SegmentMap &segments, const std::atomic<bool> &closing, uint64_t size);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return size_; }
	Result<void> sync() override { return {}; }
	bool isFast() const override { return true; }

	/// The mapping is another process's: readAt() cannot reach it.
	void setForeign() { foreign_ = true; }
	/// Copies land write-protected (the region tracks writes).
	void setWriteProtect() { writeProtect_ = true; }

	/// Pages that were present already when a copy reached them.
	uint64_t existingPages() const { return existing_.load(std::memory_order_relaxed); }
	/// Copies that had to wait for the layout to settle.
	uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }

private:
	Result<void> copyPiece(uintptr_t dst, const std::byte *src, uint64_t len);

	UserfaultFd &uffd_;
	const SegmentMap &segments_;
	const std::atomic<bool> &closing_;
	uint64_t size_;
	uint64_t page_;
	bool foreign_ = false;
	bool writeProtect_ = false;
	std::atomic<uint64_t> existing_{ 0 }, retries_{ 0 };
};

} // namespace r3d::uffd
