#include "stages/tracking_read_writer_at.hpp"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "fault_read_writer_at.hpp"
#include "test_support.hpp"

using namespace r3d;
using r3d::stages::TrackingReadWriterAt;

namespace {

constexpr uint64_t kChunk = 4096;

std::shared_ptr<TrackingReadWriterAt> make(uint64_t chunks)
{
	auto memory = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(chunks * kChunk).value()));
	return std::make_shared<TrackingReadWriterAt>(memory, kChunk);
}

} // namespace

TEST_CASE("writes before track() are not recorded", "[tracking]")
{
	auto t = make(16);
	auto data = r3test::pattern(100, 1);
	REQUIRE(t->writeAt(data, 0));
	CHECK(t->syncDirty().empty());
	t->track();
	REQUIRE(t->writeAt(data, 5 * kChunk));
	CHECK(t->syncDirty() == std::vector<uint64_t>{ 5 });
}

TEST_CASE("markDirty marks a chunk again while tracking, only then", "[tracking]")
{
	auto t = make(16);
	t->markDirty(3);
	t->track();
	CHECK(t->syncDirty().empty());
	t->markDirty(4);
	t->markDirty(16); // past the end: ignored
	CHECK(t->syncDirty() == std::vector<uint64_t>{ 4 });
}

TEST_CASE("syncDirty returns every chunk a write touched, once", "[tracking]")
{
	auto t = make(16);
	t->track();
	auto data = r3test::pattern(kChunk + 2, 2);
	REQUIRE(t->writeAt(data, 3 * kChunk - 1)); // touches 2, 3 and 4
	REQUIRE(t->trim(10 * kChunk, 1));
	REQUIRE(t->writeZeroes(12 * kChunk, kChunk));
	CHECK(t->dirtyCount() == 5);
	CHECK(t->syncDirty() == std::vector<uint64_t>{ 2, 3, 4, 10, 12 });
	CHECK(t->syncDirty().empty()); // cleared, tracking goes on
	REQUIRE(t->writeAt(data, 0));
	CHECK(t->syncDirty() == std::vector<uint64_t>{ 0, 1 });
	t->untrack();
	REQUIRE(t->writeAt(data, 0));
	CHECK(t->syncDirty().empty());
}

TEST_CASE("writes refused as out of range are not marked dirty", "[tracking]")
{
	auto t = make(4);
	t->track();
	auto data = r3test::pattern(kChunk, 3);
	CHECK_FALSE(t->writeAt(data, 4 * kChunk));
	CHECK_FALSE(t->writeAt(data, 3 * kChunk + 1));
	CHECK(t->syncDirty().empty());
}

TEST_CASE("a write that failed is still marked dirty: it may have changed part of the range", "[tracking]")
{
	auto memory = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(8 * kChunk).value()));
	// Every write fails with EIO, as a backend can after changing part of the range.
	auto failing = std::make_shared<r3test::FaultReadWriterAt>(memory);
	failing->failAfter(r3test::FaultReadWriterAt::kWrites, 0, EIO);
	TrackingReadWriterAt t(failing, kChunk);
	t.track();
	auto data = r3test::pattern(2 * kChunk, 4);
	auto r = t.writeAt(data, kChunk);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK(t.syncDirty() == std::vector<uint64_t>{ 1, 2 });
}

TEST_CASE("no dirty chunk is missed under concurrent writes and syncs", "[tracking]")
{
	constexpr uint64_t kChunks = 512;
	auto t = make(kChunks);
	t->track();
	std::atomic<bool> done{ false };
	std::vector<std::set<uint64_t>> written(4);
	std::vector<std::thread> writers;
	for (int w = 0; w < 4; ++w) {
		writers.emplace_back([&, w] {
			auto data = r3test::pattern(100, static_cast<uint32_t>(w));
			for (uint64_t i = 0; i < 4000; ++i) {
				uint64_t chunk = (i * 7 + static_cast<uint64_t>(w) * 131) % kChunks;
				REQUIRE(t->writeAt(data, chunk * kChunk + 17));
				written[w].insert(chunk);
			}
		});
	}
	std::set<uint64_t> seen;
	std::thread syncer([&] {
		while (!done.load()) {
			for (auto c : t->syncDirty())
				seen.insert(c);
		}
	});
	for (auto &w : writers)
		w.join();
	done = true;
	syncer.join();
	for (auto c : t->syncDirty())
		seen.insert(c);
	for (const auto &set : written)
		for (auto c : set)
			REQUIRE(seen.count(c) == 1);
}
