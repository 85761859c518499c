#pragma once

// Where a memory region's bytes are in the address space. A region starts as one mapping;
// munmap and mremap of parts of it (the UNMAP and REMAP events) cut it into segments, each
// a run of addresses holding a run of region offsets. Parts unmapped are in no segment:
// nothing is copied there and no fault comes from there. Safe for concurrent use; changes
// come from the fault server's thread, lookups from every puller and fault worker.

#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <vector>

namespace r3d::uffd {

class SegmentMap
{
public:
	struct Segment {
		uintptr_t addr = 0;
		uint64_t len = 0;
		uint64_t offset = 0; ///< region offset of addr
	};

	explicit SegmentMap(std::vector<Segment> segments);

	/// The region offset at `addr`, or nullopt outside every segment.
	std::optional<uint64_t> offsetAt(uintptr_t addr) const;
	/// Calls fn(addr, offset, len) for each mapped piece of region range [offset, offset+len).
	void forEachMapped(uint64_t offset, uint64_t len,
			   const std::function<void(uintptr_t addr, uint64_t offset, uint64_t len)> &fn) const;
	/// The region ranges (offset, len) held by addresses [start, end).
	std::vector<std::pair<uint64_t, uint64_t>> offsetsIn(uintptr_t start, uintptr_t end) const;

	/// Addresses [start, end) are gone (munmap).
	void unmap(uintptr_t start, uintptr_t end);
	/// Addresses [from, from+len) moved to `to` (mremap).
	void remap(uintptr_t from, uintptr_t to, uint64_t len);

	bool empty() const;
	std::vector<Segment> segments() const;

private:
	// Removes [start, end) from segments_ and returns the pieces removed (lock held).
	std::vector<Segment> cut(uintptr_t start, uintptr_t end);

	mutable std::shared_mutex mutex_;
	std::vector<Segment> segments_; ///< sorted by addr, disjoint
};

} // namespace r3d::uffd
