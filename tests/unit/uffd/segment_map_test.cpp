#include "uffd/segment_map.hpp"

#include <catch2/catch.hpp>

using r3d::uffd::SegmentMap;

namespace {

constexpr uintptr_t kBase = 0x100000;
constexpr uint64_t kLen = 0x10000;

std::vector<std::pair<uint64_t, uint64_t>> mapped(const SegmentMap &m, uint64_t offset, uint64_t len)
{
	std::vector<std::pair<uint64_t, uint64_t>> out; // (addr, offset) of each piece
	m.forEachMapped(offset, len, [&](uintptr_t addr, uint64_t off, uint64_t) { out.emplace_back(addr, off); });
	return out;
}

} // namespace

TEST_CASE("one segment: addresses and offsets map both ways", "[segment_map]")
{
	SegmentMap m({ { kBase, kLen, 0 } });
	CHECK(m.offsetAt(kBase + 0x1234) == 0x1234u);
	CHECK_FALSE(m.offsetAt(kBase - 1));
	CHECK_FALSE(m.offsetAt(kBase + kLen));
	CHECK(mapped(m, 0x2000, 0x1000) == std::vector<std::pair<uint64_t, uint64_t>>{ { kBase + 0x2000, 0x2000 } });
}

TEST_CASE("unmap of the middle splits the segment; its offsets are no longer mapped", "[segment_map]")
{
	SegmentMap m({ { kBase, kLen, 0 } });
	m.unmap(kBase + 0x4000, kBase + 0x8000);
	CHECK(m.segments().size() == 2);
	CHECK_FALSE(m.offsetAt(kBase + 0x5000));
	CHECK(m.offsetAt(kBase + 0x9000) == 0x9000u);
	// A range across the hole yields only its two mapped pieces.
	auto pieces = mapped(m, 0x3000, 0x6000);
	CHECK(pieces == std::vector<std::pair<uint64_t, uint64_t>>{ { kBase + 0x3000, 0x3000 }, { kBase + 0x8000, 0x8000 } });
	CHECK(m.offsetsIn(kBase, kBase + kLen).size() == 2);
	m.unmap(0, UINTPTR_MAX);
	CHECK(m.empty());
}

TEST_CASE("remap moves offsets to the new addresses, replacing what was there", "[segment_map]")
{
	SegmentMap m({ { kBase, kLen, 0 } });
	constexpr uintptr_t to = 0x900000;
	m.remap(kBase + 0x8000, to, 0x8000); // the upper half moves
	CHECK(m.offsetAt(to + 0x10) == 0x8010u);
	CHECK_FALSE(m.offsetAt(kBase + 0x8010));
	CHECK(m.offsetAt(kBase + 0x10) == 0x10u);
	// The whole region moves onto part of where it was.
	m.remap(kBase, kBase + 0x2000, 0x8000);
	CHECK(m.offsetAt(kBase + 0x2000) == 0u);
	CHECK_FALSE(m.offsetAt(kBase));
	CHECK(m.offsetAt(to) == 0x8000u);
	auto pieces = mapped(m, 0, kLen);
	REQUIRE(pieces.size() == 2);
	CHECK(pieces[0] == std::pair<uint64_t, uint64_t>{ kBase + 0x2000, 0 });
	CHECK(pieces[1] == std::pair<uint64_t, uint64_t>{ to, 0x8000 });
}
