#include "stages/chunk_state.hpp"

#include <atomic>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "fault_read_writer_at.hpp"
#include "managed_rig.hpp"

using namespace r3d;
using namespace r3d::stages;
using namespace std::chrono_literals;
using Begin = ChunkState::Begin;

namespace {

// The census must always be what a recount of the words says.
void requireCensusMatches(const ChunkState &s)
{
	ChunkState::Census counted;
	for (uint64_t i = 0; i < s.chunks(); ++i) {
		switch (s.load(i).phase()) {
		case ChunkPhase::Remote: ++counted.remote; break;
		case ChunkPhase::Pulling: ++counted.pulling; break;
		case ChunkPhase::Local: ++counted.local; break;
		case ChunkPhase::Dirty: ++counted.dirty; break;
		case ChunkPhase::Pushing: ++counted.pushing; break;
		}
	}
	auto c = s.census();
	CHECK(c.remote == counted.remote);
	CHECK(c.pulling == counted.pulling);
	CHECK(c.local == counted.local);
	CHECK(c.dirty == counted.dirty);
	CHECK(c.pushing == counted.pushing);
	CHECK(c.remote + c.pulling + c.local + c.dirty + c.pushing == s.chunks());
}

// Makes chunk `i` dirty with no writer in flight.
void makeDirty(ChunkState &s, uint64_t i)
{
	bool wasClean = false;
	REQUIRE(s.beginWrite(i, true, wasClean) == Begin::Started);
	s.endWrite(i);
	REQUIRE(s.load(i).phase() == ChunkPhase::Dirty);
}

} // namespace

TEST_CASE("a fresh state has every chunk remote", "[chunk_state]")
{
	ChunkState s(10);
	CHECK(s.chunks() == 10);
	for (uint64_t i = 0; i < 10; ++i) {
		auto w = s.load(i);
		CHECK(w.phase() == ChunkPhase::Remote);
		CHECK(w.writers() == 0);
		CHECK(w.generation() == 0);
		CHECK_FALSE(w.present());
		CHECK_FALSE(w.dirty());
	}
	CHECK(s.census().remote == 10);
	requireCensusMatches(s);
	CHECK(std::string(phaseName(ChunkPhase::Remote)) == "remote");
	CHECK(std::string(phaseName(ChunkPhase::Pulling)) == "pulling");
	CHECK(std::string(phaseName(ChunkPhase::Local)) == "local");
	CHECK(std::string(phaseName(ChunkPhase::Dirty)) == "dirty");
	CHECK(std::string(phaseName(ChunkPhase::Pushing)) == "pushing");
}

TEST_CASE("pull: remote -> pulling -> local, or back to remote on failure", "[chunk_state]")
{
	ChunkState s(4);
	REQUIRE(s.claimPull(1));
	CHECK(s.load(1).phase() == ChunkPhase::Pulling);
	CHECK_FALSE(s.load(1).present());
	CHECK_FALSE(s.claimPull(1)); // one owner per pull
	CHECK(s.census().pulling == 1);
	requireCensusMatches(s);

	s.finishPull(1, true);
	CHECK(s.load(1).phase() == ChunkPhase::Local);
	CHECK(s.load(1).present());
	CHECK_FALSE(s.load(1).dirty());
	CHECK_FALSE(s.claimPull(1)); // local chunks are not pulled again

	REQUIRE(s.claimPull(2));
	s.finishPull(2, false);
	CHECK(s.load(2).phase() == ChunkPhase::Remote);
	CHECK(s.claimPull(2)); // a failed pull can be claimed again
	s.finishPull(2, true);

	auto c = s.census();
	CHECK(c.remote == 2);
	CHECK(c.local == 2);
	CHECK(c.pulling == 0);
	requireCensusMatches(s);
}

TEST_CASE("dropLocal: local -> remote (a discarded page), nothing else moves", "[chunk_state]")
{
	ChunkState s(4);
	CHECK_FALSE(s.dropLocal(0)); // remote already
	REQUIRE(s.claimPull(1));
	CHECK_FALSE(s.dropLocal(1)); // a pull in flight keeps its owner
	s.finishPull(1, true);
	REQUIRE(s.dropLocal(1));
	CHECK(s.load(1).phase() == ChunkPhase::Remote);
	CHECK(s.claimPull(1)); // pulled again on the next read
	s.finishPull(1, true);
	bool wasClean = false;
	REQUIRE(s.beginWrite(1, true, wasClean) == Begin::Started);
	s.endWrite(1);
	CHECK_FALSE(s.dropLocal(1)); // dirty data is not dropped
	CHECK(s.load(1).phase() == ChunkPhase::Dirty);
	requireCensusMatches(s);
}

TEST_CASE("waitWhilePulling blocks until the pull ends and returns the settled word", "[chunk_state]")
{
	ChunkState s(2);
	CHECK(s.waitWhilePulling(0).phase() == ChunkPhase::Remote); // not pulling: returns at once
	REQUIRE(s.claimPull(0));
	auto waiter = std::async(std::launch::async, [&] { return s.waitWhilePulling(0).phase(); });
	// Still pulling: the waiter cannot have returned (a longer wait only makes this stricter).
	CHECK(waiter.wait_for(50ms) == std::future_status::timeout);
	s.finishPull(0, true);
	CHECK(waiter.get() == ChunkPhase::Local);

	REQUIRE(s.claimPull(1));
	auto failed = std::async(std::launch::async, [&] { return s.waitWhilePulling(1).phase(); });
	s.finishPull(1, false);
	CHECK(failed.get() == ChunkPhase::Remote);
}

TEST_CASE("beginWrite on each phase", "[chunk_state]")
{
	ChunkState s(8);
	bool wasClean = false;

	SECTION("remote, partial write: must pull first, nothing changes")
	{
		CHECK(s.beginWrite(0, false, wasClean) == Begin::NeedPull);
		CHECK(s.load(0).raw == 0);
		requireCensusMatches(s);
	}
	SECTION("remote, whole-chunk write: dirty without a pull, was clean")
	{
		REQUIRE(s.beginWrite(0, true, wasClean) == Begin::Started);
		CHECK(wasClean);
		auto w = s.load(0);
		CHECK(w.phase() == ChunkPhase::Dirty);
		CHECK(w.writers() == 1);
		CHECK(w.generation() == 1);
		s.endWrite(0);
		w = s.load(0);
		CHECK(w.phase() == ChunkPhase::Dirty);
		CHECK(w.writers() == 0);
		CHECK(w.generation() == 2); // the end of a write raises it again
		CHECK(s.census().dirty == 1);
		requireCensusMatches(s);
	}
	SECTION("pulling: wait for the pull")
	{
		REQUIRE(s.claimPull(0));
		CHECK(s.beginWrite(0, false, wasClean) == Begin::WaitPull);
		CHECK(s.beginWrite(0, true, wasClean) == Begin::WaitPull);
		CHECK(s.load(0).phase() == ChunkPhase::Pulling);
	}
	SECTION("local: dirty, was clean")
	{
		REQUIRE(s.claimPull(0));
		s.finishPull(0, true);
		REQUIRE(s.beginWrite(0, false, wasClean) == Begin::Started);
		CHECK(wasClean);
		CHECK(s.load(0).phase() == ChunkPhase::Dirty);
		s.endWrite(0);
		requireCensusMatches(s);
	}
	SECTION("dirty: stays dirty, was not clean; writers add up")
	{
		makeDirty(s, 0);
		wasClean = true;
		REQUIRE(s.beginWrite(0, false, wasClean) == Begin::Started);
		CHECK_FALSE(wasClean);
		REQUIRE(s.beginWrite(0, true, wasClean) == Begin::Started);
		CHECK(s.load(0).writers() == 2);
		s.endWrite(0);
		s.endWrite(0);
		CHECK(s.load(0).writers() == 0);
		CHECK(s.census().dirty == 1);
		requireCensusMatches(s);
	}
	SECTION("pushing: dirty again, was not clean")
	{
		makeDirty(s, 0);
		REQUIRE(s.claimPush(0) >= 0);
		wasClean = true;
		REQUIRE(s.beginWrite(0, false, wasClean) == Begin::Started);
		CHECK_FALSE(wasClean);
		CHECK(s.load(0).phase() == ChunkPhase::Dirty);
		CHECK(s.census().pushing == 0);
		s.endWrite(0);
		requireCensusMatches(s);
	}
}

TEST_CASE("push: dirty -> pushing -> local, or back to dirty on failure", "[chunk_state]")
{
	ChunkState s(4);
	CHECK(s.claimPush(0) == -1); // remote
	REQUIRE(s.claimPull(1));
	CHECK(s.claimPush(1) == -1); // pulling
	s.finishPull(1, true);
	CHECK(s.claimPush(1) == -1); // local

	makeDirty(s, 2);
	uint32_t gen = s.load(2).generation();
	int64_t claimed = s.claimPush(2);
	REQUIRE(claimed == gen);
	CHECK(s.load(2).phase() == ChunkPhase::Pushing);
	CHECK(s.load(2).present());
	CHECK(s.load(2).dirty()); // still newer than the remote until it is pushed
	CHECK(s.claimPush(2) == -1); // one push at a time
	CHECK(s.census().pushing == 1);
	CHECK(s.unchangedSince(2, gen));
	CHECK_FALSE(s.unchangedSince(2, gen + 1));
	CHECK(s.finishPush(2, gen, true));
	CHECK(s.load(2).phase() == ChunkPhase::Local);
	CHECK(s.load(2).generation() == gen);
	CHECK_FALSE(s.unchangedSince(2, gen)); // not pushing any more

	makeDirty(s, 3);
	gen = static_cast<uint32_t>(s.claimPush(3));
	CHECK_FALSE(s.finishPush(3, gen, false)); // false: not pushed
	CHECK(s.load(3).phase() == ChunkPhase::Dirty);
	CHECK(s.claimPush(3) == gen); // claimable again, same data
	CHECK(s.finishPush(3, gen, true));
	requireCensusMatches(s);
	CHECK(s.census().local == 3);
}

TEST_CASE("a writer in flight keeps the pusher off the chunk", "[chunk_state]")
{
	ChunkState s(1);
	bool wasClean = false;
	REQUIRE(s.beginWrite(0, true, wasClean) == Begin::Started);
	CHECK(s.claimPush(0) == -1);
	s.endWrite(0);
	CHECK(s.claimPush(0) >= 0);
}

TEST_CASE("a write during a push keeps the chunk dirty (generation race)", "[chunk_state]")
{
	ChunkState s(1);
	makeDirty(s, 0);
	auto gen = static_cast<uint32_t>(s.claimPush(0));
	bool wasClean = true;

	SECTION("write still in flight when the push ends")
	{
		REQUIRE(s.beginWrite(0, false, wasClean) == Begin::Started);
		CHECK_FALSE(s.unchangedSince(0, gen));
		CHECK_FALSE(s.finishPush(0, gen, true));
		CHECK(s.load(0).phase() == ChunkPhase::Dirty);
		CHECK(s.claimPush(0) == -1); // its writer is still there
		s.endWrite(0);
	}
	SECTION("write started and ended while the chunk was copied")
	{
		REQUIRE(s.beginWrite(0, false, wasClean) == Begin::Started);
		s.endWrite(0);
		CHECK_FALSE(s.unchangedSince(0, gen));
		CHECK_FALSE(s.finishPush(0, gen, true));
		CHECK(s.load(0).phase() == ChunkPhase::Dirty);
	}
	SECTION("a failed push after a write does not lose it either")
	{
		REQUIRE(s.beginWrite(0, false, wasClean) == Begin::Started);
		s.endWrite(0);
		CHECK_FALSE(s.finishPush(0, gen, false));
		CHECK(s.load(0).phase() == ChunkPhase::Dirty);
	}
	CHECK_FALSE(wasClean);
	// The next claim is at a newer generation and can complete.
	int64_t again = s.claimPush(0);
	REQUIRE(again >= 0);
	CHECK(static_cast<uint32_t>(again) != gen);
	CHECK(s.finishPush(0, static_cast<uint32_t>(again), true));
	requireCensusMatches(s);
}

TEST_CASE("the generation wraps without confusing the push check", "[chunk_state]")
{
	ChunkState s(1);
	makeDirty(s, 0);
	auto gen = static_cast<uint32_t>(s.claimPush(0));
	bool wasClean = false;
	// 2^21 writes raise the 22-bit generation by 2^22: back to the same number.
	for (uint32_t n = 0; n < (1u << 21); ++n) {
		REQUIRE(s.beginWrite(0, true, wasClean) == Begin::Started);
		s.endWrite(0);
	}
	CHECK(s.load(0).generation() == gen);
	// The phase is dirty, not pushing, so the stale claim still cannot complete.
	CHECK_FALSE(s.unchangedSince(0, gen));
	CHECK_FALSE(s.finishPush(0, gen, true));
	CHECK(s.load(0).phase() == ChunkPhase::Dirty);
}

TEST_CASE("the 128th concurrent writer of one chunk waits for one to finish", "[chunk_state]")
{
	ChunkState s(1);
	bool wasClean = false;
	for (int i = 0; i < 127; ++i)
		REQUIRE(s.beginWrite(0, true, wasClean) == Begin::Started);
	CHECK(s.load(0).writers() == 127);
	auto extra = std::async(std::launch::async, [&] {
		bool c = false;
		return s.beginWrite(0, true, c);
	});
	CHECK(extra.wait_for(50ms) == std::future_status::timeout);
	CHECK(s.load(0).phase() == ChunkPhase::Dirty); // the count did not overflow into the phase
	s.endWrite(0);
	CHECK(extra.get() == Begin::Started);
	CHECK(s.load(0).writers() == 127);
	for (int i = 0; i < 127; ++i)
		s.endWrite(0);
	CHECK(s.load(0).writers() == 0);
	CHECK(s.load(0).phase() == ChunkPhase::Dirty);
}

TEST_CASE("reset sets a phase outright and keeps the census", "[chunk_state]")
{
	ChunkState s(6);
	s.reset(0, ChunkPhase::Local);
	s.reset(1, ChunkPhase::Dirty);
	s.reset(2, ChunkPhase::Dirty);
	s.reset(2, ChunkPhase::Local); // a later record wins
	s.reset(3, ChunkPhase::Remote);
	auto c = s.census();
	CHECK(c.local == 2);
	CHECK(c.dirty == 1);
	CHECK(c.remote == 3);
	requireCensusMatches(s);
	CHECK(s.findNext(0, ChunkPhase::Dirty) == 1);
	CHECK(s.findNext(2, ChunkPhase::Dirty) == 6); // none: chunks()
	CHECK(s.findNext(0, ChunkPhase::Remote) == 3);
	CHECK(s.findNext(4, ChunkPhase::Remote) == 4);
	CHECK(s.findNext(6, ChunkPhase::Remote) == 6);
}

TEST_CASE("the census stays consistent under concurrent transitions", "[chunk_state]")
{
	constexpr uint64_t kChunks = 64;
	ChunkState s(kChunks);
	std::vector<std::thread> threads;
	// Pullers, writers and pushers all at once over the same chunks.
	for (int t = 0; t < 6; ++t) {
		threads.emplace_back([&, t] {
			std::mt19937 rng(static_cast<uint32_t>(t) + 1);
			for (int n = 0; n < 20000; ++n) {
				uint64_t i = rng() % kChunks;
				switch ((t + n) % 3) {
				case 0:
					if (s.claimPull(i))
						s.finishPull(i, rng() % 4 != 0);
					break;
				case 1: {
					bool wasClean = false;
					auto b = s.beginWrite(i, rng() % 2 == 0, wasClean);
					if (b == Begin::Started)
						s.endWrite(i);
					break;
				}
				default: {
					int64_t g = s.claimPush(i);
					if (g >= 0)
						s.finishPush(i, static_cast<uint32_t>(g), rng() % 3 != 0);
					break;
				}
				}
			}
		});
	}
	for (auto &th : threads)
		th.join();
	requireCensusMatches(s);
	for (uint64_t i = 0; i < kChunks; ++i) {
		CHECK(s.load(i).writers() == 0);
		auto p = s.load(i).phase();
		CHECK(p != ChunkPhase::Pulling);
		CHECK(p != ChunkPhase::Pushing);
	}
}

// The real stages: a Pusher that pushes while writes land, against memory backends.

namespace {

constexpr uint64_t kChunk = 4096;

} // namespace

TEST_CASE("pusher: a write while the push is on the wire is pushed again", "[chunk_state][pusher]")
{
	auto remoteMem = r3test::memoryDisk(16 * kChunk, 3);
	auto fault = std::make_shared<r3test::FaultReadWriterAt>(remoteMem);
	fault->hangOnce(r3test::FaultReadWriterAt::kWrites); // the first push stalls on the wire
	r3test::Rig rig(fault, kChunk);

	auto first = r3test::pattern(kChunk, 11);
	REQUIRE(rig.top.writeAt(first, 2 * kChunk));
	auto pushing = std::async(std::launch::async, [&] { return rig.pusher.pushAll(nullptr, 10s).has_value(); });
	fault->waitHeld();
	CHECK(rig.phase(2) == ChunkPhase::Pushing);
	auto second = r3test::pattern(kChunk, 12);
	REQUIRE(rig.top.writeAt(second, 2 * kChunk)); // lands while the old copy is in flight
	CHECK(rig.phase(2) == ChunkPhase::Dirty);
	fault->release();
	REQUIRE(pushing.get());
	CHECK(rig.phase(2) == ChunkPhase::Local);
	CHECK(r3test::readRange(*remoteMem, 2 * kChunk, kChunk) == second);
	CHECK(rig.pusher.stats().repushed >= 1);
	CHECK(rig.ctx.state.census().dirty == 0);
}

TEST_CASE("pusher: a write while the chunk is copied from the cache is not pushed torn", "[chunk_state][pusher]")
{
	auto remote = std::make_shared<r3test::CountingRemote>(r3test::memoryDisk(16 * kChunk, 3));
	r3test::Rig rig(remote, kChunk);
	// The cache stalls the pusher's copy of the chunk; the write goes in meanwhile.
	auto cacheFault = std::make_shared<r3test::FaultReadWriterAt>(rig.ctx.cache);
	rig.ctx.cache = cacheFault;
	auto first = r3test::pattern(kChunk, 21);
	REQUIRE(rig.top.writeAt(first, 5 * kChunk));
	cacheFault->hangOnce(r3test::FaultReadWriterAt::kReads);
	auto pushing = std::async(std::launch::async, [&] { return rig.pusher.pushAll(nullptr, 10s).has_value(); });
	cacheFault->waitHeld();
	auto second = r3test::pattern(kChunk, 22);
	REQUIRE(rig.top.writeAt(second, 5 * kChunk));
	cacheFault->release();
	REQUIRE(pushing.get());
	CHECK(r3test::readRange(*remote->next(), 5 * kChunk, kChunk) == second);
	// The copy taken across the write was dropped, not sent: one push reached the remote.
	CHECK(remote->count('w') == 1);
	CHECK(rig.phase(5) == ChunkPhase::Local);
}

TEST_CASE("pusher and writer threads hammering one chunk: the remote ends equal to the cache",
	  "[chunk_state][pusher]")
{
	constexpr uint64_t kChunks = 8;
	auto remoteMem = r3test::memoryDisk(kChunks * kChunk, 5);
	auto fault = std::make_shared<r3test::FaultReadWriterAt>(remoteMem);
	fault->delay(r3test::FaultReadWriterAt::kWrites, 100us); // pushes take long enough to be overtaken
	r3d::stages::PusherOptions pu;
	pu.interval = 1ms;
	r3test::Rig rig(fault, kChunk, {}, pu);
	rig.pusher.start();

	std::atomic<bool> stop{ false };
	std::atomic<int> writeErrors{ 0 };
	auto expected = r3test::pattern(kChunks * kChunk, 5); // what the one writer leaves behind
	std::thread writer([&] {
		std::mt19937 rng(99);
		std::vector<std::byte> buf(kChunk + kChunk / 2);
		for (int n = 0; n < 4000; ++n) {
			// Mostly chunk 3, sometimes straddling into chunk 4; partial and whole writes.
			uint64_t len = 1 + rng() % buf.size();
			uint64_t off = 3 * kChunk + (rng() % 2 ? 0 : rng() % kChunk);
			len = std::min(len, kChunks * kChunk - off);
			for (uint64_t k = 0; k < len; ++k)
				buf[k] = static_cast<std::byte>(rng());
			if (!rig.top.writeAt(std::span(buf.data(), len), off))
				++writeErrors;
			std::copy(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(len),
				  expected.begin() + static_cast<std::ptrdiff_t>(off));
			if (n % 64 == 0 && !rig.top.sync()) // FLUSH: kicks the pusher
				++writeErrors;
		}
		stop = true;
	});
	// A second pusher loop, as Sync() runs beside the pusher thread.
	std::thread syncer([&] {
		while (!stop) {
			if (!rig.pusher.pushAll(nullptr, 10s))
				++writeErrors;
			std::this_thread::yield();
		}
	});
	writer.join();
	syncer.join();
	REQUIRE(writeErrors == 0);
	REQUIRE(rig.pusher.pushAll(nullptr, 10s));
	rig.pusher.stop();

	INFO("repushed " << rig.pusher.stats().repushed << " chunks in " << rig.pusher.stats().rounds << " rounds");
	CHECK(rig.ctx.state.census().dirty == 0);
	CHECK(rig.ctx.state.census().pushing == 0);
	// Every byte the writer wrote is on the remote, and the chunks nobody wrote still hold
	// the remote's own data.
	CHECK(r3test::readWhole(*remoteMem) == expected);
	CHECK(r3test::readWhole(rig.top) == expected);
	requireCensusMatches(rig.ctx.state);
}
