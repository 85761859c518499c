#include "migration/dirty_fanout.hpp"
#include "migration/tracking_dirty_source.hpp"

#include <atomic>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "test_support.hpp"

using namespace r3d;
using namespace r3d::migration;

namespace {

constexpr uint64_t kChunk = 4096;

std::shared_ptr<stages::TrackingReadWriterAt> tracker(uint64_t size)
{
	auto memory = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
	return std::make_shared<stages::TrackingReadWriterAt>(memory, kChunk);
}

void write(stages::TrackingReadWriterAt &t, uint64_t chunk)
{
	auto data = r3test::pattern(16, static_cast<uint32_t>(chunk));
	REQUIRE(t.writeAt(data, chunk * kChunk));
}

} // namespace

TEST_CASE("tracking source: rounds of the chunks written, with their bytes", "[dirty]")
{
	auto t = tracker(10 * kChunk + 100); // 11 chunks, the last 100 bytes
	TrackingDirtySource s(t);
	CHECK(s.chunkCount() == 11);
	CHECK(s.regionSize() == 10 * kChunk + 100);
	CHECK_FALSE(s.started());
	CHECK(s.take().error().value() == ENOTCONN);

	write(*t, 1); // before start(): not part of any round
	REQUIRE(s.start());
	CHECK(s.started());
	write(*t, 3);
	write(*t, 10);
	write(*t, 3);
	CHECK(s.pendingChunks() == 2);
	auto r1 = s.take();
	REQUIRE(r1);
	CHECK(r1->round == 1);
	CHECK(r1->chunks == std::vector<uint64_t>{ 3, 10 });
	CHECK(r1->bytes == kChunk + 100);
	CHECK(s.pendingChunks() == 0);

	auto r2 = s.take();
	REQUIRE(r2);
	CHECK(r2->round == 2);
	CHECK(r2->chunks.empty());
	CHECK(r2->bytes == 0);

	s.stop();
	CHECK_FALSE(s.started());
	write(*t, 4);
	REQUIRE(s.start()); // a restart forgets the old set and counts rounds anew
	CHECK(s.take()->chunks.empty());
	CHECK(s.round() == 1);
}

TEST_CASE("requeue puts chunks back into the running round", "[dirty][resume]")
{
	auto t = tracker(16 * kChunk);
	TrackingDirtySource s(t);
	CHECK(s.requeue({ 1 }).error().value() == ENOTCONN);
	REQUIRE(s.start());
	write(*t, 2);
	// A resuming leecher holds everything but 5 and 9 (and names a chunk past the end).
	REQUIRE(s.requeue({ 5, 9, 99 }));
	CHECK(s.take()->chunks == std::vector<uint64_t>{ 2, 5, 9 });

	auto fanout = DirtyFanout::create(std::make_shared<TrackingDirtySource>(tracker(16 * kChunk)));
	auto a = fanout->addView();
	auto b = fanout->addView();
	REQUIRE(a->start());
	REQUIRE(b->start());
	REQUIRE(a->requeue({ 3, 99 }));
	CHECK(a->take()->chunks == std::vector<uint64_t>{ 3 });
	CHECK(b->take()->chunks.empty()); // only a's leecher lacked it
	b->stop();
	CHECK(b->requeue({ 1 }).error().value() == ENOTCONN);
}

TEST_CASE("tracking source: a write racing with take() lands in exactly one round", "[dirty]")
{
	constexpr uint64_t kChunks = 256;
	auto t = tracker(kChunks * kChunk);
	TrackingDirtySource s(t);
	REQUIRE(s.start());
	std::atomic<bool> done{ false };
	std::thread writer([&] {
		auto data = r3test::pattern(8, 1);
		for (uint64_t i = 0; i < 20000; ++i)
			(void)t->writeAt(data, (i * 7919 % kChunks) * kChunk);
		done = true;
	});
	std::set<uint64_t> seen;
	// However the threads are scheduled, takes run while the writer may be writing.
	do {
		auto r = s.take();
		REQUIRE(r);
		seen.insert(r->chunks.begin(), r->chunks.end());
	} while (!done);
	writer.join();
	auto last = s.take();
	seen.insert(last->chunks.begin(), last->chunks.end());
	// 7919 is prime to 256: every chunk was written, and each write was seen in some round.
	CHECK(seen.size() == kChunks);
}

TEST_CASE("fanout: each view has its own rounds over one source", "[dirty][fork-many]")
{
	auto t = tracker(16 * kChunk);
	auto fanout = DirtyFanout::create(std::make_shared<TrackingDirtySource>(t));
	auto a = fanout->addView();
	auto b = fanout->addView();
	CHECK(a->chunkCount() == 16);
	REQUIRE(a->start());
	REQUIRE(b->start());
	CHECK(t->tracking());
	CHECK(fanout->activeViews() == 2);
	CHECK(a->start().error().value() == EALREADY);

	write(*t, 1);
	CHECK(a->pendingChunks() >= 1);
	CHECK(a->take()->chunks == std::vector<uint64_t>{ 1 });
	write(*t, 2);
	// What a took is still dirty for b.
	auto rb = b->take();
	CHECK(rb->chunks == std::vector<uint64_t>{ 1, 2 });
	CHECK(rb->round == 1);
	auto ra = a->take();
	CHECK(ra->chunks == std::vector<uint64_t>{ 2 });
	CHECK(ra->round == 2);
	CHECK(b->take()->chunks.empty());
}

TEST_CASE("fanout: a late view sees only writes from its start; the last stop stops the source",
	  "[dirty][fork-many]")
{
	auto t = tracker(16 * kChunk);
	auto fanout = DirtyFanout::create(std::make_shared<TrackingDirtySource>(t));
	auto a = fanout->addView();
	REQUIRE(a->start());
	write(*t, 5);
	auto c = fanout->addView();
	REQUIRE(c->start());
	write(*t, 6);
	CHECK(c->take()->chunks == std::vector<uint64_t>{ 6 });
	CHECK(a->take()->chunks == std::vector<uint64_t>{ 5, 6 });

	write(*t, 7);
	a->stop(); // a stopping keeps what c has not taken
	CHECK(t->tracking());
	CHECK(c->take()->chunks == std::vector<uint64_t>{ 7 });
	CHECK(a->take().error().value() == ENOTCONN);
	c.reset(); // a view destroyed is stopped
	CHECK(fanout->activeViews() == 0);
	CHECK_FALSE(t->tracking());
}
