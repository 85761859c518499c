#include "uffd/segment_map.hpp"

#include <algorithm>
#include <mutex>

namespace r3d::uffd {

SegmentMap::SegmentMap(std::vector<Segment> segments) : segments_(std::move(segments)) {}

std::optional<uint64_t> SegmentMap::offsetAt(uintptr_t addr) const
{
	std::shared_lock lock(mutex_);
	for (const auto &s : segments_)
		if (addr >= s.addr && addr - s.addr < s.len)
			return s.offset + (addr - s.addr);
	return std::nullopt;
}

void SegmentMap::forEachMapped(uint64_t offset, uint64_t len,
			       const std::function<void(uintptr_t, uint64_t, uint64_t)> &fn) const
{
	// Copied out first: fn may block (an ioctl) and must not hold the lock against changes.
	std::vector<Segment> pieces;
	{
		std::shared_lock lock(mutex_);
		uint64_t end = offset + len;
		for (const auto &s : segments_) {
			uint64_t a = std::max(offset, s.offset), b = std::min(end, s.offset + s.len);
			if (a < b)
				pieces.push_back({ s.addr + (a - s.offset), b - a, a });
		}
	}
	for (const auto &p : pieces)
		fn(p.addr, p.offset, p.len);
}

std::vector<std::pair<uint64_t, uint64_t>> SegmentMap::offsetsIn(uintptr_t start, uintptr_t end) const
{
	std::shared_lock lock(mutex_);
	std::vector<std::pair<uint64_t, uint64_t>> out;
	for (const auto &s : segments_) {
		uintptr_t a = std::max(start, s.addr), b = std::min<uintptr_t>(end, s.addr + s.len);
		if (a < b)
			out.emplace_back(s.offset + (a - s.addr), b - a);
	}
	return out;
}

std::vector<SegmentMap::Segment> SegmentMap::cut(uintptr_t start, uintptr_t end)
{
	std::vector<Segment> kept, removed;
	for (const auto &s : segments_) {
		uintptr_t sEnd = s.addr + s.len;
		if (sEnd <= start || s.addr >= end) {
			kept.push_back(s);
			continue;
		}
		if (s.addr < start)
			kept.push_back({ s.addr, start - s.addr, s.offset });
		uintptr_t a = std::max(start, s.addr), b = std::min(end, sEnd);
		removed.push_back({ a, b - a, s.offset + (a - s.addr) });
		if (sEnd > end)
			kept.push_back({ end, sEnd - end, s.offset + (end - s.addr) });
	}
	segments_ = std::move(kept);
	return removed;
}

void SegmentMap::unmap(uintptr_t start, uintptr_t end)
{
	std::unique_lock lock(mutex_);
	(void)cut(start, end);
}

void SegmentMap::remap(uintptr_t from, uintptr_t to, uint64_t len)
{
	std::unique_lock lock(mutex_);
	auto moved = cut(from, from + len);
	// mremap unmaps whatever was at the destination first.
	(void)cut(to, to + len);
	for (auto &s : moved) {
		s.addr = to + (s.addr - from);
		segments_.push_back(s);
	}
	std::sort(segments_.begin(), segments_.end(), [](const Segment &a, const Segment &b) { return a.addr < b.addr; });
}

bool SegmentMap::empty() const
{
	std::shared_lock lock(mutex_);
	return segments_.empty();
}

std::vector<SegmentMap::Segment> SegmentMap::segments() const
{
	std::shared_lock lock(mutex_);
	return segments_;
}

} // namespace r3d::uffd
