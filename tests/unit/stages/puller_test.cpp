#include "stages/puller.hpp"

#include <algorithm>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "fault_read_writer_at.hpp"
#include "managed_rig.hpp"
#include "mount/managed_options.hpp"

using namespace r3d;
using namespace r3d::stages;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kChunk = 64 * 1024;

std::vector<std::byte> slice(const std::vector<std::byte> &v, uint64_t offset, uint64_t length)
{
	return { v.begin() + static_cast<std::ptrdiff_t>(offset), v.begin() + static_cast<std::ptrdiff_t>(offset + length) };
}

bool present(const r3test::Rig &rig, uint64_t i)
{
	return rig.ctx.state.load(i).present();
}

} // namespace

using r3test::Rig;

TEST_CASE("demand: a read of a remote chunk pulls it and serves the remote's bytes", "[puller]")
{
	constexpr uint64_t kSize = 16 * kChunk;
	auto original = r3test::pattern(kSize, 7);
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 7));
	Rig rig(remote, kChunk);
	std::vector<std::byte> buf(100);
	REQUIRE(rig.top.readAt(buf, 5 * kChunk + 10));
	CHECK(buf == slice(original, 5 * kChunk + 10, 100));
	CHECK(rig.phase(5) == ChunkPhase::Local);
	CHECK(remote->count('r') == 1);
	CHECK(remote->covering('r', 5 * kChunk) == 1);
	// Read again: from the cache.
	REQUIRE(rig.top.readAt(buf, 5 * kChunk + 10));
	CHECK(remote->count('r') == 1);
	// A read across chunks pulls only the ones not there yet, as one run.
	std::vector<std::byte> wide(3 * kChunk);
	REQUIRE(rig.top.readAt(wide, 4 * kChunk));
	CHECK(wide == slice(original, 4 * kChunk, 3 * kChunk));
	CHECK(remote->covering('r', 4 * kChunk) == 1);
	CHECK(remote->covering('r', 5 * kChunk) == 1);
	CHECK(remote->covering('r', 6 * kChunk) == 1);
	auto stats = rig.puller.stats();
	CHECK(stats.demandBytes == 3 * kChunk);
	CHECK(stats.pulledBytes == 3 * kChunk);
	CHECK(rig.ctx.state.census().remote == 13);
}

TEST_CASE("demand: two readers of one remote chunk make one remote read", "[puller]")
{
	constexpr uint64_t kSize = 8 * kChunk;
	auto original = r3test::pattern(kSize, 8);
	auto fault = std::make_shared<r3test::FaultReadWriterAt>(r3test::memoryDisk(kSize, 8));
	fault->hold(r3test::FaultReadWriterAt::kReads); // the pull stalls until both readers are in
	Rig rig(fault, kChunk);

	std::vector<std::byte> a(4096), b(512);
	auto first = std::async(std::launch::async, [&] { return rig.top.readAt(a, 3 * kChunk).has_value(); });
	fault->waitHeld();
	CHECK(rig.phase(3) == ChunkPhase::Pulling);
	auto second = std::async(std::launch::async, [&] { return rig.top.readAt(b, 3 * kChunk + 1000).has_value(); });
	// The second reader is in once it counted its wait on the pull in flight.
	REQUIRE(r3test::eventually([&] { return rig.puller.stats().demandWaits == 2; }));
	fault->release();
	CHECK(first.get());
	CHECK(second.get());
	CHECK(fault->completed(r3test::FaultReadWriterAt::kReads) == 1);
	CHECK(a == slice(original, 3 * kChunk, 4096));
	CHECK(b == slice(original, 3 * kChunk + 1000, 512));
	CHECK(rig.puller.stats().pulledBytes == kChunk);
}

TEST_CASE("demand: served at once while background pulls crawl", "[puller]")
{
	constexpr uint64_t kSize = 256 * kChunk; // 16 MiB
	auto original = r3test::pattern(kSize, 9);
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 9));
	PullerOptions po;
	po.workers = 2;
	po.rate = 256 * 1024; // background: a minute for the region; demand is never held back
	Rig rig(remote, kChunk, po);
	rig.puller.start();
	REQUIRE(r3test::eventually([&] { return rig.puller.stats().pulledBytes > 0; })); // background is running

	std::vector<std::byte> buf(kChunk);
	REQUIRE(rig.top.readAt(buf, 250 * kChunk));
	CHECK(buf == slice(original, 250 * kChunk, kChunk));
	CHECK(rig.puller.stats().demandBytes == kChunk);
	// The background was still far from the end: this chunk came on demand, not in order.
	CHECK(rig.ctx.state.census().remote > 100);
	CHECK(remote->covering('r', 250 * kChunk) == 1);
}

TEST_CASE("demand: no background batch starts while a demand pull is fetching", "[puller]")
{
	constexpr uint64_t kSize = 64 * kChunk;
	auto original = r3test::pattern(kSize, 10);
	auto fault = std::make_shared<r3test::FaultReadWriterAt>(r3test::memoryDisk(kSize, 10));
	fault->hold(r3test::FaultReadWriterAt::kReads);
	PullerOptions po;
	po.workers = 2;
	Rig rig(fault, kChunk, po);
	std::vector<std::byte> buf(4096);
	auto reader = std::async(std::launch::async, [&] { return rig.top.readAt(buf, 40 * kChunk).has_value(); });
	fault->waitHeld();
	rig.puller.start();
	// Idle workers that found a demand running: given time, they still claim nothing.
	std::this_thread::sleep_for(100ms);
	CHECK(rig.ctx.state.census().pulling == 1);
	CHECK(rig.phase(0) == ChunkPhase::Remote);
	fault->release();
	REQUIRE(reader.get());
	CHECK(buf == slice(original, 40 * kChunk, 4096));
	// Once it is done the background goes on, woken rather than at its next poll.
	REQUIRE(r3test::eventually([&] { return rig.ctx.state.census().remote == 0; }));
	CHECK(r3test::readWhole(rig.top) == original);
}

TEST_CASE("follow-on: sequential reads queue the chunks after them", "[puller]")
{
	constexpr uint64_t kSize = 64 * kChunk;
	auto original = r3test::pattern(kSize, 10);
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 10));
	PullerOptions po;
	po.background = false; // only demand and follow-on
	po.workers = 2;
	Rig rig(remote, kChunk, po);
	rig.puller.start();

	std::vector<std::byte> buf(kChunk);
	for (uint64_t i = 0; i < 4; ++i) {
		REQUIRE(rig.top.readAt(buf, i * kChunk));
		CHECK(buf == slice(original, i * kChunk, kChunk));
	}
	// Nobody reads chunks 4 and 5, yet they arrive.
	REQUIRE(r3test::eventually([&] { return present(rig, 4) && present(rig, 5); }));
	CHECK(rig.puller.stats().followOnBytes >= 2 * kChunk);
	CHECK(r3test::readRange(*rig.ctx.cache, 4 * kChunk, 2 * kChunk) == slice(original, 4 * kChunk, 2 * kChunk));
	// Without background pulls, what lies far ahead stays remote.
	CHECK(rig.phase(40) == ChunkPhase::Remote);
	CHECK(rig.phase(63) == ChunkPhase::Remote);
}

TEST_CASE("follow-on: random reads queue nothing", "[puller]")
{
	constexpr uint64_t kSize = 64 * kChunk;
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 10));
	PullerOptions po;
	po.background = false;
	po.workers = 1; // windows are served in the order they were queued
	Rig rig(remote, kChunk, po);
	rig.puller.start();
	std::vector<std::byte> buf(100);
	for (uint64_t i : { 30, 2, 50, 11, 40, 20 })
		REQUIRE(rig.top.readAt(buf, i * kChunk));
	// Then a sequential pair at the end: its window (62, 63) is queued behind anything
	// the random reads might have queued.
	REQUIRE(rig.top.readAt(buf, 60 * kChunk));
	REQUIRE(rig.top.readAt(buf, 61 * kChunk));
	REQUIRE(r3test::eventually([&] { return present(rig, 62) && present(rig, 63); }));
	for (uint64_t i : { 31, 3, 51, 12, 41, 21 })
		CHECK(rig.phase(i) == ChunkPhase::Remote);
	CHECK(rig.ctx.state.census().local == 10);
	CHECK(rig.puller.stats().followOnBytes == 2 * kChunk);
}

namespace {

// Pulls everything in the background with one worker and returns the remote reads' offsets.
std::vector<uint64_t> backgroundOrder(PullerOptions po, uint64_t chunks)
{
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(chunks * kChunk, 12));
	po.workers = 1;
	po.maxBatch = 2 * kChunk; // short runs, so the order shows
	Rig rig(remote, kChunk, po);
	rig.puller.start();
	REQUIRE(r3test::eventually([&] { return rig.ctx.state.census().local == chunks; }));
	rig.puller.stop();
	CHECK(r3test::readWhole(*rig.ctx.cache) == r3test::readWhole(*remote->next()));
	std::vector<uint64_t> offsets;
	for (const auto &c : remote->calls('r')) {
		CHECK(c.length <= 2 * kChunk);
		offsets.push_back(c.offset);
	}
	// Every chunk was fetched exactly once.
	for (uint64_t i = 0; i < chunks; ++i)
		CHECK(remote->covering('r', i * kChunk) == 1);
	return offsets;
}

} // namespace

TEST_CASE("background: linear order", "[puller]")
{
	auto offsets = backgroundOrder({}, 32);
	REQUIRE_FALSE(offsets.empty());
	CHECK(offsets.front() == 0);
	CHECK(std::is_sorted(offsets.begin(), offsets.end()));
}

TEST_CASE("background: reverse order starts at the end", "[puller]")
{
	PullerOptions po;
	po.order = PullOrder::Reverse;
	auto offsets = backgroundOrder(po, 32);
	REQUIRE_FALSE(offsets.empty());
	CHECK(offsets.front() == 30 * kChunk); // the last run of two chunks
	CHECK(std::is_sorted(offsets.rbegin(), offsets.rend()));
	CHECK(offsets.back() == 0);
}

TEST_CASE("background: hot ranges first, in their order, then the rest linearly", "[puller]")
{
	r3test::TempDir dir;
	std::string hotFile = dir / "hot";
	std::ofstream(hotFile) << "# hot list\n"
			       << "1600K 128K\n" // chunks 25..26
			       << "\n"
			       << std::to_string(10 * kChunk) << " 1\n"; // chunk 10
	auto hot = mount::readHotList(hotFile, kChunk, 32 * kChunk);
	REQUIRE(hot);
	REQUIRE(hot->size() == 2);
	CHECK((*hot)[0] == std::pair<uint64_t, uint64_t>{ 25, 26 });
	CHECK((*hot)[1] == std::pair<uint64_t, uint64_t>{ 10, 10 });

	PullerOptions po;
	po.order = PullOrder::Hot;
	po.hot = *hot;
	auto offsets = backgroundOrder(po, 32);
	REQUIRE(offsets.size() >= 3);
	CHECK(offsets[0] == 25 * kChunk);
	CHECK(offsets[1] == 10 * kChunk);
	CHECK(offsets[2] == 0);
	CHECK(std::is_sorted(offsets.begin() + 2, offsets.end()));
}

TEST_CASE("hot list: malformed lines are refused with the line number", "[puller]")
{
	r3test::TempDir dir;
	std::string hotFile = dir / "hot";
	std::ofstream(hotFile) << "0 64K\n"
			       << "banana\n";
	auto bad = mount::readHotList(hotFile, kChunk, 32 * kChunk);
	REQUIRE_FALSE(bad);
	CHECK(bad.error().code.value() == EINVAL);
	CHECK(bad.error().message.find("line 2") != std::string::npos);
	std::ofstream(hotFile, std::ios::trunc) << std::to_string(32 * kChunk) << " 1\n"; // past the end
	CHECK_FALSE(mount::readHotList(hotFile, kChunk, 32 * kChunk));
	CHECK_FALSE(mount::readHotList(dir / "missing", kChunk, 32 * kChunk));
}

TEST_CASE("writes: a partial write to a remote chunk pulls it first, a whole-chunk write does not", "[puller]")
{
	constexpr uint64_t kSize = 16 * kChunk;
	auto original = r3test::pattern(kSize, 13);
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 13));
	Rig rig(remote, kChunk);

	SECTION("partial")
	{
		auto data = r3test::pattern(100, 1);
		REQUIRE(rig.top.writeAt(data, 7 * kChunk + 500));
		CHECK(remote->count('r') == 1);
		CHECK(remote->covering('r', 7 * kChunk) == 1);
		CHECK(rig.phase(7) == ChunkPhase::Dirty);
		// The rest of the chunk is the remote's.
		auto expected = slice(original, 7 * kChunk, kChunk);
		std::copy(data.begin(), data.end(), expected.begin() + 500);
		CHECK(r3test::readRange(rig.top, 7 * kChunk, kChunk) == expected);
		CHECK(remote->count('r') == 1);
	}
	SECTION("whole")
	{
		auto data = r3test::pattern(kChunk, 2);
		REQUIRE(rig.top.writeAt(data, 7 * kChunk));
		CHECK(remote->count('r') == 0);
		CHECK(rig.phase(7) == ChunkPhase::Dirty);
		CHECK(r3test::readRange(rig.top, 7 * kChunk, kChunk) == data);
		CHECK(remote->count('r') == 0);
	}
	SECTION("spanning: only the partial ends are pulled")
	{
		auto data = r3test::pattern(2 * kChunk, 3);
		REQUIRE(rig.top.writeAt(data, 8 * kChunk + kChunk / 2)); // half of 8, all of 9, half of 10
		CHECK(remote->count('r') == 2);
		CHECK(remote->covering('r', 8 * kChunk) == 1);
		CHECK(remote->covering('r', 9 * kChunk) == 0);
		CHECK(remote->covering('r', 10 * kChunk) == 1);
		for (uint64_t i : { 8, 9, 10 })
			CHECK(rig.phase(i) == ChunkPhase::Dirty);
		auto expected = slice(original, 8 * kChunk, 3 * kChunk);
		std::copy(data.begin(), data.end(), expected.begin() + kChunk / 2);
		CHECK(r3test::readRange(rig.top, 8 * kChunk, 3 * kChunk) == expected);
	}
	SECTION("the short last chunk, written whole")
	{
		constexpr uint64_t kOdd = 4 * kChunk + 1000;
		auto oddRemote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kOdd, 4));
		Rig odd(oddRemote, kChunk);
		auto data = r3test::pattern(1000, 4);
		REQUIRE(odd.top.writeAt(data, 4 * kChunk));
		CHECK(oddRemote->count('r') == 0);
		CHECK(odd.phase(4) == ChunkPhase::Dirty);
	}
}

TEST_CASE("writes: the pusher sends what was written; the remote equals the cache", "[puller][pusher]")
{
	constexpr uint64_t kSize = 16 * kChunk;
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 14));
	Rig rig(remote, kChunk);
	REQUIRE(rig.top.writeAt(r3test::pattern(3 * kChunk, 5), 2 * kChunk)); // 3 contiguous chunks
	REQUIRE(rig.top.writeAt(r3test::pattern(10, 6), 12 * kChunk + 3));
	CHECK(rig.ctx.state.census().dirty == 4);
	REQUIRE(rig.pusher.pushAll(nullptr, 5s));
	CHECK(rig.ctx.state.census().dirty == 0);
	// Contiguous dirty chunks go as one write.
	CHECK(remote->count('w') == 2);
	CHECK(r3test::readRange(*remote->next(), 0, kSize) == r3test::readRange(rig.top, 0, kSize));
	CHECK(rig.pusher.stats().pushedBytes == 4 * kChunk);
}

TEST_CASE("push rate: stop() ends a rate-limited round at once; its chunks stay dirty", "[pusher]")
{
	constexpr uint64_t kSize = 64 * kChunk;
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize));
	PusherOptions pu;
	pu.rate = 4096; // 4 MiB to push: over 15 minutes
	pu.interval = 1h;
	Rig rig(remote, kChunk, {}, pu);
	auto data = r3test::pattern(kSize, 12);
	REQUIRE(rig.top.writeAt(data, 0));
	rig.pusher.start();
	rig.pusher.kick();
	// The round claimed the chunks and waits for the limiter before its first batch.
	REQUIRE(r3test::eventually([&] { return rig.ctx.state.census().pushing == 64; }));
	auto stopped = std::async(std::launch::async, [&] { rig.pusher.stop(); });
	REQUIRE(r3test::eventually([&] { return stopped.wait_for(0s) == std::future_status::ready; }));
	auto c = rig.ctx.state.census();
	CHECK(c.pushing == 0);
	CHECK(c.dirty == 64); // nothing the remote did not sync was marked clean
	CHECK(rig.pusher.stats().errors == 0);
	CHECK(r3test::readWhole(rig.top) == data);
}

TEST_CASE("waitPresent returns once that much is local", "[puller]")
{
	constexpr uint64_t kSize = 32 * kChunk;
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 15));
	Rig rig(remote, kChunk);
	rig.puller.start();
	REQUIRE(rig.puller.waitPresent(kSize / 2, nullptr));
	CHECK(rig.ctx.state.census().local >= 16);
	REQUIRE(rig.puller.waitPresent(10 * kSize, nullptr)); // capped at the size
	CHECK(rig.ctx.state.census().local == 32);
	CHECK(r3test::readWhole(*rig.ctx.cache) == r3test::readWhole(*remote->next()));
}

TEST_CASE("waitPresent is cancelled by its progress callback", "[puller]")
{
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(32 * kChunk, 15));
	Rig rig(remote, kChunk); // no workers: nothing will arrive
	auto r = rig.puller.waitPresent(kChunk, [](uint64_t) { return false; });
	REQUIRE_FALSE(r);
	CHECK(r.error() == std::errc::operation_canceled);
}

TEST_CASE("demand: an unreachable remote fails the read with EIO after the remote timeout", "[puller]")
{
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(8 * kChunk, 16));
	PullerOptions po;
	po.remoteTimeout = 200ms;
	Rig rig(remote, kChunk, po);
	std::vector<std::byte> buf(10);
	REQUIRE(rig.top.readAt(buf, 0)); // chunk 0 is local now
	remote->goDown(ECONNRESET);
	auto r = rig.top.readAt(buf, 3 * kChunk);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK(remote->refused() >= 2); // it retried before giving up
	CHECK(rig.phase(3) == ChunkPhase::Remote);
	CHECK(rig.ctx.health.degraded());
	CHECK(rig.top.readAt(buf, 0)); // local chunks still read
	// A partial write to a remote chunk cannot pull it either; nothing is left dirty.
	auto w = rig.top.writeAt(buf, 4 * kChunk + 1);
	REQUIRE_FALSE(w);
	CHECK(w.error().value() == EIO);
	CHECK(rig.phase(4) == ChunkPhase::Remote);
	remote->comeUp();
	REQUIRE(rig.top.readAt(buf, 3 * kChunk));
	CHECK_FALSE(rig.ctx.health.degraded());
}

TEST_CASE("demand: an error the remote will never cure is returned at once", "[puller]")
{
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(8 * kChunk, 16));
	PullerOptions po;
	po.remoteTimeout = std::chrono::hours(1); // a retry would hang the test
	Rig rig(remote, kChunk, po);
	remote->goDown(EACCES);
	std::vector<std::byte> buf(10);
	auto r = rig.top.readAt(buf, 0);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EACCES);
	CHECK(remote->refused() == 1);
}

namespace {

// Runs `fn` on a detached thread: a case that finds it stuck can fail instead of hanging
// in a future's destructor.
std::shared_future<void> detached(std::function<void()> fn)
{
	auto done = std::make_shared<std::promise<void>>();
	std::shared_future<void> f = done->get_future().share();
	std::thread([fn = std::move(fn), done] {
		fn();
		done->set_value();
	}).detach();
	return f;
}

} // namespace

TEST_CASE("pull rate: a throttled background worker holds no chunk a reader waits for, nor stop()", "[puller]")
{
	constexpr uint64_t kSize = 32 * kChunk;
	auto original = r3test::pattern(kSize, 17);
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(kSize, 17));
	PullerOptions po;
	po.workers = 1;
	po.maxBatch = 4 * kChunk;
	po.rate = 1; // one byte a second: any batch puts the worker in debt for days
	auto rig = std::make_unique<Rig>(remote, kChunk, po);
	rig->puller.start();

	// A stuck worker fails the case; its threads are left to the process's exit.
	auto giveUp = [&](const char *what) {
		(void)rig.release();
		FAIL(what);
	};
	// The worker pulls its first batch and then owes the limiter; nothing stays claimed.
	if (!r3test::eventually([&] {
		    auto c = rig->ctx.state.census();
		    return c.local > 0 && c.pulling == 0;
	    }))
		giveUp("the throttled worker still holds claimed chunks");
	// A read of a chunk in that first batch is served, not held behind the rate.
	auto buf = std::make_shared<std::vector<std::byte>>(kChunk);
	auto readOk = std::make_shared<std::atomic<bool>>(false);
	auto read = detached([&top = rig->top, buf, readOk] { *readOk = top.readAt(*buf, kChunk).has_value(); });
	if (read.wait_for(30s) != std::future_status::ready)
		giveUp("a read waited for the throttled worker");
	CHECK(*readOk);
	CHECK(*buf == std::vector<std::byte>(original.begin() + kChunk, original.begin() + 2 * kChunk));
	// stop() does not sit out the debt either.
	auto stopped = detached([&puller = rig->puller] { puller.stop(); });
	if (stopped.wait_for(30s) != std::future_status::ready)
		giveUp("stop() waited for the rate limiter");
}
