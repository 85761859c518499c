// Write tracking of a memory region (wp-async with PAGEMAP_SCAN, wp-sync with write-protect
// faults): the pages the app wrote, and only those, reach the backend on sync() and on the
// interval, and a write racing a write-back is never lost. Needs userfaultfd with WP; the
// wp-async cases need WP_ASYNC and WP_UNPOPULATED (6.7+) and skip their mode without them.
#include <r3d/memory_region.hpp>

#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "../stages/managed_rig.hpp"
#include "uffd/userfault_fd.hpp"

using namespace r3d;
using namespace std::chrono_literals;

namespace {

const r3test::Prerequisite uffdPresent("userfaultfd is not available to this process",
				       [] { return uffd::UserfaultFd::kernelFeatures().has_value(); });

constexpr uint64_t kPage = 4096, kChunk = 64 * 1024;

bool hasWpAsync()
{
	auto f = uffd::UserfaultFd::kernelFeatures();
	return f && (*f & uffd::kFeaturesWpAsync) == uffd::kFeaturesWpAsync;
}

// A backend that remembers where each write went.
class RecordingDisk final : public stages::ForwardingReadWriterAt
{
public:
	using ForwardingReadWriterAt::ForwardingReadWriterAt;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		{
			std::lock_guard lock(mutex_);
			for (uint64_t o = offset; o < offset + buf.size(); o += kChunk)
				chunks_.insert(o / kChunk);
		}
		return ForwardingReadWriterAt::writeAt(buf, offset);
	}
	std::set<uint64_t> takeChunks()
	{
		std::lock_guard lock(mutex_);
		return std::exchange(chunks_, {});
	}

private:
	std::mutex mutex_;
	std::set<uint64_t> chunks_;
};

MemoryRegionOptions tracked(RegionTracking mode, std::chrono::milliseconds interval = 0ms)
{
	MemoryRegionOptions o;
	o.tracking = mode;
	o.writeBackInterval = interval;
	return o;
}

std::unique_ptr<MemoryRegion> mapOrFail(std::shared_ptr<ReadWriterAt> backend, const MemoryRegionOptions &o)
{
	auto r = MemoryRegion::map(std::move(backend), 0, o);
	if (!r)
		FAIL("map: " << r.error().message);
	return std::move(*r);
}

std::vector<RegionTracking> modes()
{
	std::vector<RegionTracking> m{ RegionTracking::WpSync };
	if (hasWpAsync())
		m.push_back(RegionTracking::WpAsync);
	else
		WARN("this kernel lacks WP_ASYNC/WP_UNPOPULATED: wp-async is not tested");
	return m;
}

void requireSame(ReadWriterAt &backend, const MemoryRegion &region)
{
	auto b = r3test::readWhole(backend);
	REQUIRE(b.size() == region.size());
	for (uint64_t off = 0; off < b.size(); off += kPage)
		if (std::memcmp(b.data() + off, region.data() + off, kPage) != 0)
			FAIL("the backend differs from the region at " << off);
}

} // namespace

TEST_CASE("auto tracking is wp-async where the kernel has it, else wp-sync", "[uffd][tracking]")
{
	CHECK(resolveTracking(RegionTracking::Auto) == (hasWpAsync() ? RegionTracking::WpAsync : RegionTracking::WpSync));
	CHECK(resolveTracking(RegionTracking::WpSync) == RegionTracking::WpSync);
	CHECK(parseTracking("wp-sync") == RegionTracking::WpSync);
	CHECK(!parseTracking("bogus"));
	auto region = mapOrFail(r3test::memoryDisk(1u << 20, 3), tracked(RegionTracking::Auto));
	CHECK(region->stats().trackingMode == (hasWpAsync() ? "wp-async" : "wp-sync"));
	auto none = mapOrFail(r3test::memoryDisk(1u << 20, 3), {});
	CHECK(none->stats().trackingMode == "none");
}

TEST_CASE("wp-sync and wp-async find the same dirty pages, and sync() writes exactly their chunks",
	  "[uffd][tracking]")
{
	constexpr uint64_t size = 8u << 20;
	// Pulled pages, unpulled pages, neighbours in one chunk, a run across chunks, the last page.
	const std::vector<uint64_t> pages{ 0, 1, 17, 100, 1000, 2047, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309,
					   310, 311, 312, 313, 314, 315, 316, 317 };
	std::set<uint64_t> wantChunks;
	for (auto p : pages)
		wantChunks.insert(p * kPage / kChunk);
	std::map<std::string, std::set<uint64_t>> found;
	for (auto mode : modes()) {
		INFO(trackingName(mode));
		auto disk = std::make_shared<RecordingDisk>(r3test::memoryDisk(size, 21));
		auto region = mapOrFail(disk, tracked(mode));
		REQUIRE(region->stats().trackingMode == trackingName(mode));
		std::byte *p = region->data();
		(void)*static_cast<volatile std::byte *>(p + 1000 * kPage); // read first, written later
		REQUIRE(r3test::eventually([&] { return region->stats().presentBytes == size; }));
		disk->takeChunks();
		CHECK(region->stats().dirtyBytes == 0);
		for (auto page : pages)
			p[page * kPage + 7] = std::byte{ 0x77 };
		CHECK(region->stats().dirtyBytes == pages.size() * kPage);
		auto s = region->sync();
		REQUIRE(s);
		found[trackingName(mode)] = disk->takeChunks();
		CHECK(found[trackingName(mode)] == wantChunks);
		CHECK(region->stats().dirtyBytes == 0);
		requireSame(*disk, *region);
		// Nothing written since: the next round writes nothing.
		REQUIRE(region->sync());
		CHECK(disk->takeChunks().empty());
	}
	if (found.size() == 2)
		CHECK(found["wp-sync"] == found["wp-async"]);
}

TEST_CASE("a write racing a write-back is never lost", "[uffd][tracking]")
{
	constexpr uint64_t size = 4u << 20;
	for (auto mode : modes()) {
		INFO(trackingName(mode));
		auto disk = r3test::memoryDisk(size, 22);
		auto region = mapOrFail(disk, tracked(mode));
		std::byte *p = region->data();
		// Write, sync, the same page again, sync.
		p[5 * kPage] = std::byte{ 1 };
		REQUIRE(region->sync());
		p[5 * kPage] = std::byte{ 2 };
		p[5 * kPage + 1] = std::byte{ 3 };
		REQUIRE(region->sync());
		requireSame(*disk, *region);
		// A writer hammering a few pages while write-backs run: the last sync has it all.
		std::atomic<bool> stop{ false };
		std::thread writer([&] {
			for (uint64_t i = 0; !stop.load(); ++i)
				std::memcpy(p + (i % 64) * kPage + (i % 512) * 8, &i, sizeof i);
		});
		for (int i = 0; i < 50; ++i)
			REQUIRE(region->sync());
		stop = true;
		writer.join();
		REQUIRE(region->sync());
		requireSame(*disk, *region);
	}
}

TEST_CASE("writes reach a file backend on sync()", "[uffd][tracking]")
{
	constexpr uint64_t size = 4u << 20;
	char path[] = "/tmp/r3-region-tracking-XXXXXX";
	int fd = ::mkstemp(path);
	REQUIRE(fd >= 0);
	auto data = r3test::pattern(size, 23);
	REQUIRE(::pwrite(fd, data.data(), size, 0) == static_cast<ssize_t>(size));
	for (auto mode : modes()) {
		INFO(trackingName(mode));
		auto region = MemoryRegion::map(std::string("file:") + path, size, tracked(mode));
		REQUIRE(region);
		std::byte *p = (*region)->data();
		std::memset(p + 3 * kPage, 0x5c, 2 * kPage);
		std::memset(p + size - kPage, 0x6d, kPage);
		REQUIRE((*region)->sync());
		std::vector<std::byte> file(size);
		REQUIRE(::pread(fd, file.data(), size, 0) == static_cast<ssize_t>(size));
		CHECK(std::memcmp(file.data(), p, size) == 0);
		CHECK(file[3 * kPage] == std::byte{ 0x5c });
		CHECK(file[size - 1] == std::byte{ 0x6d });
	}
	::close(fd);
	::unlink(path);
}

TEST_CASE("the interval writes dirty pages back without a sync()", "[uffd][tracking]")
{
	constexpr uint64_t size = 2u << 20;
	for (auto mode : modes()) {
		INFO(trackingName(mode));
		auto disk = r3test::memoryDisk(size, 24);
		auto region = mapOrFail(disk, tracked(mode, 100ms));
		region->data()[9 * kPage + 9] = std::byte{ 0x99 };
		CHECK(r3test::eventually([&] { return r3test::readRange(*disk, 9 * kPage + 9, 1)[0] == std::byte{ 0x99 }; },
					 10s));
		CHECK(r3test::eventually([&] { return region->stats().dirtyBytes == 0; }, 10s));
		CHECK(region->stats().writeBacks > 0);
	}
}

TEST_CASE("madvise(DONTNEED) over written pages: the write-back takes the backend's bytes again",
	  "[uffd][tracking]")
{
	constexpr uint64_t size = 2u << 20;
	for (auto mode : modes()) {
		INFO(trackingName(mode));
		auto disk = r3test::memoryDisk(size, 25);
		auto before = r3test::readWhole(*disk);
		auto region = mapOrFail(disk, tracked(mode));
		std::byte *p = region->data();
		std::memset(p, 0x11, kPage);
		std::memset(p + kPage, 0x22, kPage);
		REQUIRE(::madvise(p + kPage, kPage, MADV_DONTNEED) == 0);
		REQUIRE(region->sync());
		auto after = r3test::readRange(*disk, 0, 2 * kPage);
		CHECK(after[0] == std::byte{ 0x11 });
		CHECK(std::memcmp(after.data() + kPage, before.data() + kPage, kPage) == 0);
		requireSame(*disk, *region);
	}
}
