#include "mount/managed_region.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "../stages/managed_rig.hpp"

using namespace r3d;
using namespace r3d::mount;
using r3d::stages::ChunkPhase;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kChunk = 64 * 1024;
constexpr uint64_t kChunks = 64;
constexpr uint64_t kSize = kChunks * kChunk;
const std::string kUri = "r3://test-remote:7700/disk";

struct Opened {
	std::shared_ptr<ManagedRegion> region;
	Error error;
};

Opened openRegion(std::shared_ptr<ReadWriterAt> remote, ManagedOptions o, const std::string &uri = kUri)
{
	Opened out;
	auto r = ManagedRegion::open(std::move(remote), uri, std::move(o));
	if (r)
		out.region = std::move(*r);
	else
		out.error = r.error();
	return out;
}

ManagedOptions cacheIn(const std::string &dir)
{
	ManagedOptions o;
	o.cache = dir;
	o.chunk = kChunk;
	return o;
}

bool contains(const std::string &text, const std::string &part)
{
	return text.find(part) != std::string::npos;
}

// Writes a mix of partial, whole and straddling writes into `region` and into `expected`.
void writeMix(ReadWriterAt &top, std::vector<std::byte> &expected, uint32_t seed)
{
	struct W {
		uint64_t offset, length;
	};
	for (auto w : { W{ 100, 5000 }, W{ 3 * kChunk, kChunk }, W{ 10 * kChunk - 7, 20 }, W{ 20 * kChunk, 4 * kChunk },
			W{ kSize - 300, 300 } }) {
		auto data = r3test::pattern(w.length, seed++);
		REQUIRE(top.writeAt(data, w.offset));
		std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(w.offset));
	}
}

} // namespace

TEST_CASE("open, write, close: the remote holds everything written", "[managed]")
{
	r3test::TempDir tmp;
	auto remote = r3test::memoryDisk(kSize, 1);
	auto expected = r3test::pattern(kSize, 1);
	ManagedOptions o = cacheIn(tmp / "cache");
	SECTION("with a cache directory") {}
	SECTION("with a memory cache")
	{
		o.cache = "";
	}
	SECTION("with a memory cache and no background pulls")
	{
		o.cache = "memory";
		o.background = false;
	}
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	CHECK(m.region->size() == kSize);
	CHECK(m.region->chunk() == kChunk);
	auto top = m.region->top();
	writeMix(*top, expected, 100);
	CHECK(m.region->status().dirtyBytes > 0);
	CHECK(r3test::readWhole(*top) == expected);
	auto closed = m.region->close();
	REQUIRE(closed);
	CHECK(m.region->status().dirtyBytes == 0);
	CHECK(r3test::readWhole(*remote) == expected);
	CHECK(m.region->close()); // idempotent
}

TEST_CASE("syncAll pushes everything and keeps serving", "[managed]")
{
	r3test::TempDir tmp;
	auto remote = r3test::memoryDisk(kSize, 2);
	auto expected = r3test::pattern(kSize, 2);
	auto o = cacheIn(tmp / "cache");
	o.pushInterval = 24h;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	writeMix(*m.region->top(), expected, 200);
	REQUIRE(m.region->syncAll());
	CHECK(m.region->status().dirtyBytes == 0);
	CHECK(r3test::readWhole(*remote) == expected);
	writeMix(*m.region->top(), expected, 300);
	REQUIRE(m.region->close());
	CHECK(r3test::readWhole(*remote) == expected);
}

TEST_CASE("a FLUSH kicks the pusher even with a long push interval", "[managed]")
{
	auto remote = r3test::memoryDisk(kSize, 3);
	ManagedOptions o;
	o.chunk = kChunk;
	o.pushInterval = 24h;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto data = r3test::pattern(kChunk, 33);
	REQUIRE(m.region->top()->writeAt(data, 5 * kChunk));
	REQUIRE(m.region->top()->sync());
	REQUIRE(r3test::eventually([&] { return r3test::readRange(*remote, 5 * kChunk, kChunk) == data; }));
	REQUIRE(r3test::eventually([&] { return m.region->status().dirtyBytes == 0; }));
}

TEST_CASE("resume: the same cache serves the same data and pushes what was left dirty", "[managed]")
{
	r3test::TempDir tmp;
	auto remoteMem = r3test::memoryDisk(kSize, 4);
	auto remote = std::make_shared<r3test::CountingRemote>(remoteMem);
	auto expected = r3test::pattern(kSize, 4);
	auto o = cacheIn(tmp / "cache");
	o.pushInterval = 24h; // nothing is pushed before the region goes away
	o.background = false;
	{
		auto m = openRegion(remote, o);
		REQUIRE(m.region);
		CHECK_FALSE(m.region->status().resumed);
		std::vector<std::byte> buf(kChunk);
		REQUIRE(m.region->top()->readAt(buf, 40 * kChunk)); // pulled, clean
		writeMix(*m.region->top(), expected, 400);
		// Gone without close(): as if the process ended, with the journal committed.
	}
	CHECK(r3test::readWhole(*remoteMem) != expected); // really left dirty
	auto before = remote->count('w');
	CHECK(before == 0);

	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto s = m.region->status();
	CHECK(s.resumed);
	CHECK(s.cache == tmp / "cache");
	CHECK(s.dirtyBytes == 9 * kChunk); // chunks 0, 3, 9, 10, 20..23, 63
	CHECK(s.localBytes == 10 * kChunk); // and 40, pulled
	CHECK(m.region->context().state.load(40).phase() == ChunkPhase::Local);
	CHECK(m.region->context().state.load(3).phase() == ChunkPhase::Dirty);
	remote->reset();
	CHECK(r3test::readWhole(*m.region->top()) == expected);
	// The cache served what it held: only the remote chunks were read from the remote.
	CHECK(remote->covering('r', 3 * kChunk) == 0);
	CHECK(remote->covering('r', 40 * kChunk) == 0);
	CHECK(remote->covering('r', 41 * kChunk) == 1);
	REQUIRE(m.region->close());
	CHECK(r3test::readWhole(*remoteMem) == expected);
}

TEST_CASE("resume: a remote replaced by an empty one is refused", "[managed]")
{
	r3test::TempDir tmp;
	auto remote = r3test::memoryDisk(kSize, 5);
	auto o = cacheIn(tmp / "cache");
	{
		auto m = openRegion(remote, o);
		REQUIRE(m.region);
		REQUIRE(m.region->waitLocal(kSize));
		std::vector<std::byte> written = r3test::pattern(kSize, 5);
		writeMix(*m.region->top(), written, 500);
		REQUIRE(m.region->close());
	}
	auto empty = r3test::memoryDisk(kSize);
	auto refused = openRegion(empty, o);
	REQUIRE_FALSE(refused.region);
	CHECK(refused.error.code.value() == EMEDIUMTYPE);
	INFO(refused.error.message);
	CHECK(contains(refused.error.message, kUri));
	CHECK(contains(refused.error.message, "restarted or replaced"));
	CHECK(contains(refused.error.message, "discard-local"));
	CHECK(r3test::allZero(r3test::readWhole(*empty))); // nothing was pushed into it

	// The refusal left the cache alone: the real remote still resumes.
	{
		auto again = openRegion(remote, o);
		REQUIRE(again.region);
		CHECK(again.region->status().resumed);
	}
	// discard-local starts over against the empty remote.
	o.discardLocal = true;
	auto fresh = openRegion(empty, o);
	REQUIRE(fresh.region);
	CHECK_FALSE(fresh.region->status().resumed);
	CHECK(r3test::allZero(r3test::readRange(*fresh.region->top(), 0, kChunk)));
}

TEST_CASE("resume: a remote of another size is refused", "[managed]")
{
	r3test::TempDir tmp;
	auto o = cacheIn(tmp / "cache");
	{
		auto m = openRegion(r3test::memoryDisk(kSize, 6), o);
		REQUIRE(m.region);
		REQUIRE(m.region->close());
	}
	auto refused = openRegion(r3test::memoryDisk(2 * kSize, 6), o);
	REQUIRE_FALSE(refused.region);
	CHECK(refused.error.code.value() == EMEDIUMTYPE);
	CHECK(contains(refused.error.message, std::to_string(kSize)));
	CHECK(contains(refused.error.message, std::to_string(2 * kSize)));
	auto otherUri = openRegion(r3test::memoryDisk(kSize, 6), o, "r3://somewhere-else/disk");
	REQUIRE_FALSE(otherUri.region);
	CHECK(otherUri.error.code.value() == EMEDIUMTYPE);
}

TEST_CASE("a cache directory in use by another region is refused", "[managed]")
{
	r3test::TempDir tmp;
	auto o = cacheIn(tmp / "cache");
	auto first = openRegion(r3test::memoryDisk(kSize, 7), o);
	REQUIRE(first.region);
	auto second = openRegion(r3test::memoryDisk(kSize, 7), o);
	REQUIRE_FALSE(second.region);
	CHECK(second.error.code.value() == EBUSY);
	CHECK(contains(second.error.message, "already in use"));
}

TEST_CASE("remote errors: degraded, EIO for remote chunks, local ones still served, then recovery", "[managed]")
{
	r3test::TempDir tmp;
	auto remoteMem = r3test::memoryDisk(kSize, 8);
	auto expected = r3test::pattern(kSize, 8);
	// The test's own switchable remote: FaultReadWriterAt fails for good once armed and
	// cannot model a remote that comes back.
	auto remote = std::make_shared<r3test::CountingRemote>(remoteMem);
	auto o = cacheIn(tmp / "cache");
	o.remoteTimeout = 200ms;
	o.background = false;
	o.pushInterval = 24h;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto top = m.region->top();
	std::vector<std::byte> buf(kChunk);
	REQUIRE(top->readAt(buf, 0)); // chunk 0: local
	auto written = r3test::pattern(kChunk, 81);
	REQUIRE(top->writeAt(written, kChunk)); // chunk 1: dirty
	std::copy(written.begin(), written.end(), expected.begin() + kChunk);
	CHECK(m.region->status().state == SyncState::Syncing);

	remote->goDown(ECONNREFUSED);
	auto r = top->readAt(buf, 5 * kChunk);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	auto s = m.region->status();
	CHECK(s.state == SyncState::Degraded);
	CHECK(std::string(syncStateName(s.state)) == "degraded");
	CHECK_FALSE(s.lastError.empty());
	// What the cache holds is still served.
	REQUIRE(top->readAt(buf, 0));
	CHECK(buf == std::vector<std::byte>(expected.begin(), expected.begin() + kChunk));
	REQUIRE(top->readAt(buf, kChunk));
	CHECK(buf == written);
	// And written: a whole chunk needs nothing from the remote.
	auto more = r3test::pattern(kChunk, 82);
	REQUIRE(top->writeAt(more, 7 * kChunk));
	std::copy(more.begin(), more.end(), expected.begin() + 7 * kChunk);
	// A push cannot get through; Sync() says so once the remote timeout passed.
	auto synced = m.region->syncAll();
	REQUIRE_FALSE(synced);
	CHECK(contains(synced.error().message, "push to the remote failed"));
	CHECK(m.region->status().dirtyBytes == 2 * kChunk);
	// close() fails too, and leaves the region serving.
	REQUIRE_FALSE(m.region->close());
	REQUIRE(top->readAt(buf, kChunk));
	CHECK(buf == written);

	remote->comeUp();
	REQUIRE(m.region->syncAll());
	CHECK(m.region->status().state != SyncState::Degraded);
	CHECK(m.region->status().lastError.empty());
	CHECK(m.region->status().dirtyBytes == 0);
	REQUIRE(top->readAt(buf, 5 * kChunk)); // remote chunks read again
	REQUIRE(m.region->close());
	CHECK(r3test::readWhole(*remoteMem) == expected);
	CHECK(m.region->counters().size() > 0);
}

TEST_CASE("pull-first: open returns once that much is local", "[managed]")
{
	auto remote = r3test::memoryDisk(kSize, 9);
	ManagedOptions o;
	o.chunk = kChunk;
	SECTION("a percentage")
	{
		o.pullFirstPercent = 100;
		auto m = openRegion(remote, o);
		REQUIRE(m.region);
		CHECK(m.region->status().localBytes == kSize);
		CHECK(m.region->context().state.census().local == kChunks);
	}
	SECTION("a size")
	{
		o.pullFirstBytes = kSize / 2;
		std::vector<uint64_t> reported;
		auto r = ManagedRegion::open(remote, kUri, o, [&](uint64_t done, uint64_t) {
			reported.push_back(done);
			return true;
		});
		REQUIRE(r);
		CHECK((*r)->status().localBytes >= kSize / 2);
		REQUIRE_FALSE(reported.empty());
		CHECK(reported.back() == kSize / 2);
	}
	SECTION("needs background pulls")
	{
		o.pullFirstPercent = 50;
		o.background = false;
		auto m = openRegion(remote, o);
		REQUIRE_FALSE(m.region);
		CHECK(m.error.code.value() == EINVAL);
	}
}

TEST_CASE("meta: present and dirty maps follow the chunk states", "[managed]")
{
	auto remote = r3test::memoryDisk(kSize, 10);
	ManagedOptions o;
	o.chunk = kChunk;
	o.background = false;
	o.pushInterval = 24h;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto meta = m.region->meta();
	REQUIRE(meta->contexts() == std::vector<std::string>{ "x-r3map:present", "x-r3map:dirty" });
	std::vector<std::byte> buf(10);
	REQUIRE(m.region->top()->readAt(buf, 2 * kChunk + 5));                  // chunk 2 present
	REQUIRE(m.region->top()->writeAt(r3test::pattern(kChunk, 1), 5 * kChunk)); // chunk 5 dirty

	auto present = meta->metaExtents(0, 0, kSize);
	REQUIRE(present);
	std::vector<std::pair<uint64_t, uint32_t>> got;
	for (auto e : *present)
		got.emplace_back(e.length, e.flags);
	CHECK(got == std::vector<std::pair<uint64_t, uint32_t>>{
			     { 2 * kChunk, 0 }, { kChunk, 1 }, { 2 * kChunk, 0 }, { kChunk, 1 }, { kSize - 6 * kChunk, 0 } });
	auto dirty = meta->metaExtents(1, 0, kSize);
	REQUIRE(dirty);
	got.clear();
	for (auto e : *dirty)
		got.emplace_back(e.length, e.flags);
	CHECK(got == std::vector<std::pair<uint64_t, uint32_t>>{
			     { 5 * kChunk, 0 }, { kChunk, 1 }, { kSize - 6 * kChunk, 0 } });
	// A range inside a chunk, and one past the end.
	auto inside = meta->metaExtents(1, 5 * kChunk + 10, 100);
	REQUIRE(inside);
	REQUIRE(inside->size() == 1);
	CHECK((*inside)[0].length == 100);
	CHECK((*inside)[0].flags == 1);
	CHECK_FALSE(meta->metaExtents(0, kSize, 1));
	// Once pushed, nothing is dirty and chunk 5 stays present.
	REQUIRE(m.region->syncAll());
	auto after = meta->metaExtents(1, 0, kSize);
	REQUIRE(after);
	REQUIRE(after->size() == 1);
	CHECK((*after)[0].flags == 0);
	CHECK(m.region->context().state.load(5).present());
}

TEST_CASE("zeroing and trimming through the region reach the remote", "[managed]")
{
	auto remote = r3test::memoryDisk(kSize, 11);
	auto expected = r3test::pattern(kSize, 11);
	ManagedOptions o;
	o.chunk = kChunk;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto top = m.region->top();
	REQUIRE(top->writeZeroes(kChunk + 100, 3 * kChunk));
	std::fill(expected.begin() + kChunk + 100, expected.begin() + 4 * kChunk + 100, std::byte{ 0 });
	REQUIRE(top->trim(10 * kChunk, kChunk));
	std::fill(expected.begin() + 10 * kChunk, expected.begin() + 11 * kChunk, std::byte{ 0 });
	CHECK(r3test::readWhole(*top) == expected);
	REQUIRE(m.region->close());
	CHECK(r3test::readWhole(*remote) == expected);
}

TEST_CASE("requests outside the region are refused and change nothing", "[managed]")
{
	auto remote = r3test::memoryDisk(kSize, 12);
	ManagedOptions o;
	o.chunk = kChunk;
	o.background = false;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto top = m.region->top();
	std::vector<std::byte> buf(100);
	auto r = top->readAt(buf, kSize - 50);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EINVAL);
	auto w = top->writeAt(buf, kSize - 50);
	REQUIRE_FALSE(w);
	CHECK(w.error().value() == ENOSPC);
	CHECK(m.region->context().state.census().remote == kChunks);
	CHECK(top->readAt(std::span<std::byte>(), kSize)); // empty at the end: fine
}

// A journal append that fails (the cache's file system full) fails that write; the chunk
// must still be pushed and journaled by the next write that succeeds. RLIMIT_FSIZE at the
// journal's current end makes its next append fail with EFBIG while the cache data below it
// stays writable.

namespace {

constexpr uint64_t kSmallChunk = 4096;

class JournalAppendsFail
{
public:
	explicit JournalAppendsFail(const std::string &journal)
	{
		REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
		old_ = std::signal(SIGXFSZ, SIG_IGN);
		rlimit limit = saved_;
		limit.rlim_cur = static_cast<rlim_t>(std::filesystem::file_size(journal));
		REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
	}
	~JournalAppendsFail() { restore(); }
	void restore()
	{
		if (restored_)
			return;
		restored_ = true;
		::setrlimit(RLIMIT_FSIZE, &saved_);
		std::signal(SIGXFSZ, old_);
	}

private:
	rlimit saved_{};
	void (*old_)(int) = nullptr;
	bool restored_ = false;
};

std::shared_future<void> detachedRun(std::function<void()> fn)
{
	auto done = std::make_shared<std::promise<void>>();
	std::shared_future<void> f = done->get_future().share();
	std::thread([fn = std::move(fn), done] {
		fn();
		done->set_value();
	}).detach();
	return f;
}

// Opens a small region (4 KiB chunks) on a journaled cache, pulls chunk 0 and commits, then
// makes one write to it fail in the journal and lets a second one through.
std::vector<std::byte> failOneJournalAppend(ManagedRegion &region, const std::string &cacheDir)
{
	auto top = region.top();
	std::vector<std::byte> buf(100);
	REQUIRE(top->readAt(buf, 10)); // chunk 0: local, clean
	REQUIRE(top->sync());          // its Local record committed
	{
		JournalAppendsFail full(cacheDir + "/journal");
		auto failed = top->writeAt(r3test::pattern(100, 61), 10);
		REQUIRE_FALSE(failed);
		CHECK(failed.error().value() == EFBIG);
	}
	auto written = r3test::pattern(100, 62);
	REQUIRE(top->writeAt(written, 10)); // acknowledged
	return written;
}

} // namespace

TEST_CASE("a failed journal append: the chunk is still pushed on close", "[managed][journal]")
{
	r3test::TempDir tmp;
	auto remote = r3test::memoryDisk(16 * kSmallChunk, 13);
	auto o = cacheIn(tmp / "cache");
	o.chunk = kSmallChunk;
	o.background = false;
	o.pushInterval = 24h;
	auto m = openRegion(remote, o);
	REQUIRE(m.region);
	auto written = failOneJournalAppend(*m.region, tmp / "cache");
	CHECK(m.region->status().dirtyBytes == kSmallChunk);
	auto closing = detachedRun([region = m.region] { CHECK(region->close()); });
	if (closing.wait_for(30s) != std::future_status::ready) {
		// close() spins on a dirty chunk nobody will push; its thread keeps the region.
		FAIL("close() never finished: the dirty chunk was not handed to the pusher");
	}
	CHECK(r3test::readRange(*remote, 10, 100) == written);
}

TEST_CASE("a failed journal append: the next write records the chunk dirty", "[managed][journal]")
{
	r3test::TempDir tmp;
	auto remoteMem = r3test::memoryDisk(16 * kSmallChunk, 14);
	auto remote = std::make_shared<r3test::CountingRemote>(remoteMem);
	auto o = cacheIn(tmp / "cache");
	o.chunk = kSmallChunk;
	o.background = false;
	o.pushInterval = 24h;
	std::vector<std::byte> written;
	{
		auto m = openRegion(remote, o);
		REQUIRE(m.region);
		written = failOneJournalAppend(*m.region, tmp / "cache");
		remote->goDown(); // the push the FLUSH kicks cannot land
		REQUIRE(m.region->top()->sync()); // the acknowledged write is committed
		// Gone without a push, as after kill -9 once the FLUSH was answered.
	}
	remote->comeUp();
	auto m = openRegion(remote, o);
	INFO(m.error.message);
	REQUIRE(m.region);
	CHECK(m.region->context().state.load(0).phase() == ChunkPhase::Dirty);
	REQUIRE(m.region->close());
	CHECK(r3test::readRange(*remoteMem, 10, 100) == written);
}
