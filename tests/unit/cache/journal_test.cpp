#include "cache/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cache/local_cache.hpp"
#include "../stages/managed_rig.hpp"

using namespace r3d;
using namespace r3d::cache;
using r3d::stages::ChunkPhase;
using r3d::stages::ChunkState;

namespace {

constexpr uint64_t kChunk = 64 * 1024;
constexpr uint64_t kChunks = 64;
constexpr uint64_t kSize = kChunks * kChunk;
// The layout journal.hpp documents: a 4 KiB header, a 2-bit-per-chunk snapshot padded to 16
// bytes, then 16-byte records.
constexpr uint64_t kHeader = 4096;
constexpr uint64_t kRecordsStart = kHeader + 16;
constexpr uint64_t kRecord = 16;

const JournalIdentity kIdentity{ kSize, kChunk, "r3://remote:7700/disk" };

struct Opened {
	std::unique_ptr<ChunkState> state = std::make_unique<ChunkState>(kChunks);
	ReplayReport report;
	std::unique_ptr<Journal> journal;
	Error error;
	bool ok() const { return journal != nullptr; }
};

Opened openJournal(const std::string &path, const JournalIdentity &identity = kIdentity, bool discard = false)
{
	Opened o;
	o.state = std::make_unique<ChunkState>(identity.chunk ? (identity.size + identity.chunk - 1) / identity.chunk : 0);
	auto j = Journal::open(path, identity, *o.state, discard, o.report);
	if (j)
		o.journal = std::move(*j);
	else
		o.error = j.error();
	return o;
}

uint64_t fileSize(const std::string &path)
{
	return std::filesystem::file_size(path);
}

void truncateTo(const std::string &path, uint64_t size)
{
	std::filesystem::resize_file(path, size);
}

void flipByte(const std::string &path, uint64_t at)
{
	std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
	REQUIRE(f);
	f.seekg(static_cast<std::streamoff>(at));
	char c = 0;
	f.read(&c, 1);
	c = static_cast<char>(c ^ 0x5a);
	f.seekp(static_cast<std::streamoff>(at));
	f.write(&c, 1);
}

void append(const std::string &path, size_t n, char byte)
{
	std::ofstream f(path, std::ios::app | std::ios::binary);
	std::string junk(n, byte);
	f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

bool contains(const std::string &text, const std::string &part)
{
	return text.find(part) != std::string::npos;
}

// Appends a copy of the record at byte `at`, one slot past the last record.
void appendCopyOf(const std::string &path, uint64_t at)
{
	std::ifstream in(path, std::ios::binary);
	std::string rec(kRecord, '\0');
	in.seekg(static_cast<std::streamoff>(at));
	in.read(rec.data(), kRecord);
	in.close();
	std::ofstream(path, std::ios::app | std::ios::binary).write(rec.data(), kRecord);
}

// Why an open must be refused: its errno (0: any) and what its message names.
struct Refusal {
	int code = 0;
	std::vector<std::string> parts;
};

void checkRefused(const Opened &o, const Refusal &want)
{
	REQUIRE_FALSE(o.ok());
	if (want.code != 0)
		CHECK(o.error.code.value() == want.code);
	INFO(o.error.message);
	for (const auto &part : want.parts) {
		INFO("wanted in it: " << part);
		CHECK(contains(o.error.message, part));
	}
}

// Damage done to a journal file at `path`, by one case of a table.
using Damage = std::function<void(const std::string &path)>;

// A state change as the stages make it, then its record.
void writeChunk(Opened &o, uint64_t i)
{
	bool wasClean = false;
	REQUIRE(o.state->beginWrite(i, true, wasClean) == ChunkState::Begin::Started);
	if (wasClean)
		REQUIRE(o.journal->recordDirty(i));
	o.state->endWrite(i);
}

void pullChunk(Opened &o, uint64_t i)
{
	REQUIRE(o.state->claimPull(i));
	o.journal->notePulled(i);
	o.state->finishPull(i, true);
}

void pushChunk(Opened &o, uint64_t i)
{
	auto g = o.state->claimPush(i);
	REQUIRE(g >= 0);
	REQUIRE(o.state->finishPush(i, static_cast<uint32_t>(g), true));
	REQUIRE(o.journal->recordClean(i));
}

// A journal at `path` whose chunks `committed` were written and committed, then `after`
// written past the commit, as a kill -9 leaves it. Returns the committed length.
uint64_t writeJournal(const std::string &path, std::initializer_list<uint64_t> committed,
		      std::initializer_list<uint64_t> after = {})
{
	auto cache = r3test::memoryDisk(kSize);
	auto o = openJournal(path);
	REQUIRE(o.ok());
	for (auto i : committed)
		writeChunk(o, i);
	REQUIRE(o.journal->checkpoint(*cache, true));
	uint64_t committedEnd = o.journal->bytes();
	for (auto i : after)
		writeChunk(o, i);
	return committedEnd;
}

} // namespace

TEST_CASE("a missing journal is created fresh", "[journal]")
{
	r3test::TempDir dir;
	auto o = openJournal(dir / "journal");
	REQUIRE(o.ok());
	CHECK_FALSE(o.report.resumed);
	CHECK(o.report.droppedRecords == 0);
	CHECK(o.journal->bytes() == kRecordsStart);
	CHECK(fileSize(dir / "journal") == kRecordsStart);
	CHECK(o.state->census().remote == kChunks);
	CHECK_FALSE(std::filesystem::exists(dir / "journal.new"));
}

TEST_CASE("replay restores dirty, pulled and pushed chunks", "[journal]")
{
	r3test::TempDir dir;
	auto cache = r3test::memoryDisk(kSize);
	{
		auto o = openJournal(dir / "journal");
		REQUIRE(o.ok());
		writeChunk(o, 3);
		writeChunk(o, 7);
		writeChunk(o, 7); // dirty already: no second record needed
		pullChunk(o, 10);
		pullChunk(o, 11);
		REQUIRE(o.journal->checkpoint(*cache, true));
		pushChunk(o, 7); // pushed: clean again
		writeChunk(o, 11); // pulled, then written
	}
	// What the replay restores, and the next open again.
	auto checkRestored = [](const Opened &o, const char *when) {
		INFO(when);
		CHECK(o.state->load(3).phase() == ChunkPhase::Dirty);
		CHECK(o.state->load(7).phase() == ChunkPhase::Local);
		CHECK(o.state->load(10).phase() == ChunkPhase::Local);
		CHECK(o.state->load(11).phase() == ChunkPhase::Dirty);
		CHECK(o.report.localChunks == 2);
		CHECK(o.report.dirtyChunks == 2);
	};
	auto r = openJournal(dir / "journal");
	REQUIRE(r.ok());
	CHECK(r.report.resumed);
	CHECK(r.report.droppedRecords == 0);
	checkRestored(r, "replayed");
	CHECK(r.state->load(0).phase() == ChunkPhase::Remote);
	CHECK(r.state->census().remote == kChunks - 4);

	// The replayed state became the snapshot of a fresh file: the same again, no records.
	CHECK(r.journal->bytes() == kRecordsStart);
	r.journal.reset();
	auto again = openJournal(dir / "journal");
	REQUIRE(again.ok());
	checkRestored(again, "opened again");
}

TEST_CASE("a pulled chunk is recorded local only at a checkpoint, after the cache sync", "[journal]")
{
	r3test::TempDir dir;
	auto cache = r3test::memoryDisk(kSize);
	{
		auto o = openJournal(dir / "journal");
		REQUIRE(o.ok());
		pullChunk(o, 1);
		REQUIRE(o.journal->checkpoint(*cache, false)); // not durable, but the Local record is written
		pullChunk(o, 2); // no checkpoint: its data may not be on disk
	}
	auto r = openJournal(dir / "journal");
	REQUIRE(r.ok());
	CHECK(r.state->load(1).phase() == ChunkPhase::Local);
	CHECK(r.state->load(2).phase() == ChunkPhase::Remote); // pulled again, never trusted
}

TEST_CASE("complete records past the last commit are replayed (kill -9 keeps them)", "[journal]")
{
	r3test::TempDir dir;
	writeJournal(dir / "journal", { 1 }, { 4 });
	auto r = openJournal(dir / "journal");
	REQUIRE(r.ok());
	CHECK(r.report.droppedRecords == 0);
	CHECK(r.state->load(1).phase() == ChunkPhase::Dirty);
	CHECK(r.state->load(4).phase() == ChunkPhase::Dirty);
}

TEST_CASE("a torn tail past the committed length is dropped and reported", "[journal]")
{
	r3test::TempDir dir;
	std::string path = dir / "journal";
	uint64_t committedEnd = writeJournal(path, { 1 }, { 5, 6 });
	REQUIRE(fileSize(path) == committedEnd + 2 * kRecord);

	// Each case damages what lies past the commit: how many records are dropped, what survives.
	struct Case {
		const char *name;
		Damage damage;
		uint64_t dropped;
		std::vector<std::pair<uint64_t, ChunkPhase>> phases;
	};
	using enum ChunkPhase;
	const Case cases[] = {
		{ "cut in the middle of the last record", // the half record
		  [&](auto &p) { truncateTo(p, committedEnd + kRecord + kRecord / 2); }, 1,
		  { { 1, Dirty }, { 5, Dirty }, { 6, Remote } } },
		{ "cut in the middle of the first uncommitted record",
		  [&](auto &p) { truncateTo(p, committedEnd + 3); }, 1, { { 5, Remote } } },
		{ "garbage after the records",
		  [](auto &p) { append(p, 3 * kRecord, '\xab'); }, 3, { { 5, Dirty }, { 6, Dirty } } },
		{ "a bad record past the commit hides the ones after it", // inside the record of chunk 5
		  [&](auto &p) { flipByte(p, committedEnd + 9); }, 2, { { 1, Dirty }, { 5, Remote }, { 6, Remote } } },
		// Records carry their position in their CRC: the last record moved one slot on.
		{ "a record copied to another position is not taken for one",
		  [&](auto &p) { appendCopyOf(p, committedEnd + kRecord); }, 1, {} },
	};
	for (const auto &c : cases)
		DYNAMIC_SECTION(c.name)
		{
			c.damage(path);
			auto r = openJournal(path);
			REQUIRE(r.ok());
			CHECK(r.report.resumed);
			CHECK(r.report.droppedRecords == c.dropped);
			for (auto [chunk, phase] : c.phases) {
				INFO("chunk " << chunk);
				CHECK(r.state->load(chunk).phase() == phase);
			}
		}
	// The tail is gone from the rewritten file: the next open drops nothing.
	auto again = openJournal(path);
	REQUIRE(again.ok());
	CHECK(again.report.droppedRecords == 0);
	CHECK(again.state->load(1).phase() == ChunkPhase::Dirty);
}

TEST_CASE("corruption before the committed length is refused", "[journal]")
{
	r3test::TempDir dir;
	std::string path = dir / "journal";
	writeJournal(path, { 1, 2 });
	flipByte(path, kRecordsStart + kRecord + 2); // the record of chunk 2, committed
	auto r = openJournal(path);
	REQUIRE_FALSE(r.ok());
	CHECK(r.error.code.value() == EBADMSG);
	INFO(r.error.message);
	CHECK(contains(r.error.message, path));
	CHECK(contains(r.error.message, "corrupt record at byte " + std::to_string(kRecordsStart + kRecord)));
	CHECK(contains(r.error.message, "before the committed end"));
	CHECK(contains(r.error.message, "discard-local"));
	// Nothing was rewritten: the evidence stays, and a second open says the same.
	CHECK(openJournal(path).error.message == r.error.message);
}

TEST_CASE("a damaged header or snapshot is refused", "[journal]")
{
	r3test::TempDir dir;
	std::string path = dir / "journal";
	writeJournal(path, { 1 });

	// Each case damages the file one way; every one is refused, for its own reason.
	struct Case {
		const char *name;
		Damage damage;
		Refusal want;
	};
	const Case cases[] = {
		{ "header bytes", [](auto &p) { flipByte(p, 20); }, { EBADMSG, { "header is corrupt" } } },
		{ "magic", [](auto &p) { flipByte(p, 0); }, { 0, { "not a journal" } } },
		{ "committed length", [](auto &p) { flipByte(p, 4080); }, { EBADMSG, { "committed length" } } },
		{ "snapshot", [](auto &p) { flipByte(p, kHeader + 1); }, { EBADMSG, { "snapshot is corrupt" } } },
		{ "truncated inside the header", [](auto &p) { truncateTo(p, 1000); },
		  { EBADMSG, { "truncated: 1000 bytes, shorter than its header" } } },
		{ "empty file", [](auto &p) { truncateTo(p, 0); }, { 0, { "truncated" } } },
		{ "truncated before the committed length", [](auto &p) { truncateTo(p, fileSize(p) - kRecord); },
		  { EBADMSG, { "truncated", "committed up to" } } },
		{ "not a journal at all", [](auto &p) { std::ofstream(p, std::ios::trunc) << std::string(8192, 'x'); },
		  { 0, { "not a journal" } } },
	};
	for (const auto &c : cases)
		DYNAMIC_SECTION(c.name)
		{
			c.damage(path);
			checkRefused(openJournal(path), c.want);
		}
}

TEST_CASE("a journal of another region is refused", "[journal]")
{
	r3test::TempDir dir;
	std::string path = dir / "journal";
	{
		auto o = openJournal(path);
		REQUIRE(o.ok());
	}
	// Each case changes one part of the identity; every one is refused as another medium.
	struct Case {
		const char *name;
		JournalIdentity identity;
		std::vector<std::string> parts;
	};
	const Case cases[] = {
		{ "size", { 2 * kSize, kChunk, kIdentity.remote },
		  { std::to_string(kSize), std::to_string(2 * kSize), "discard-local" } },
		{ "chunk", { kSize, 2 * kChunk, kIdentity.remote }, { "chunks of " + std::to_string(kChunk) } },
		{ "remote", { kSize, kChunk, "r3://elsewhere:7700/disk" },
		  { "belongs to r3://remote:7700/disk, not r3://elsewhere:7700/disk" } },
	};
	for (const auto &c : cases)
		DYNAMIC_SECTION(c.name)
		{
			checkRefused(openJournal(path, c.identity), { EMEDIUMTYPE, c.parts });
		}
	// None of the refusals touched the journal.
	auto same = openJournal(path);
	CHECK(same.ok());
}

TEST_CASE("discard throws an existing journal away", "[journal]")
{
	r3test::TempDir dir;
	std::string path = dir / "journal";
	writeJournal(path, { 1 });
	SECTION("of the same region")
	{
		auto r = openJournal(path, kIdentity, true);
		REQUIRE(r.ok());
		CHECK_FALSE(r.report.resumed);
		CHECK(r.state->census().remote == kChunks);
		r.journal.reset();
		// What replaced it is a fresh journal: nothing to resume.
		auto after = openJournal(path);
		REQUIRE(after.ok());
		CHECK(after.state->census().remote == kChunks);
	}
	SECTION("even a corrupt one, or one of another remote")
	{
		flipByte(path, kRecordsStart + 2);
		JournalIdentity other{ kSize, kChunk, "r3://other/x" };
		auto r = openJournal(path, other, true);
		REQUIRE(r.ok());
		CHECK_FALSE(r.report.resumed);
		r.journal.reset();
		auto after = openJournal(path, other);
		REQUIRE(after.ok());
		CHECK(after.report.resumed);
		CHECK(after.state->census().remote == kChunks);
	}
}

TEST_CASE("a remote URI too long to record is refused", "[journal]")
{
	r3test::TempDir dir;
	auto r = openJournal(dir / "journal", { kSize, kChunk, std::string(5000, 'u') });
	REQUIRE_FALSE(r.ok());
	CHECK(r.error.code.value() == ENAMETOOLONG);
}

TEST_CASE("a checkpoint compacts records that outgrew the snapshot", "[journal]")
{
	r3test::TempDir dir;
	std::string path = dir / "journal";
	auto cache = r3test::memoryDisk(kSize);
	{
		auto o = openJournal(path);
		REQUIRE(o.ok());
		// Many dirty/clean round trips of a few chunks: more records than the threshold.
		for (int n = 0; n < 35000; ++n) {
			uint64_t i = static_cast<uint64_t>(n % 8);
			writeChunk(o, i);
			pushChunk(o, i);
		}
		writeChunk(o, 2);
		writeChunk(o, 9);
		uint64_t before = o.journal->bytes();
		REQUIRE(before > kRecordsStart + 65536 * kRecord);
		REQUIRE(o.journal->checkpoint(*cache, true));
		CHECK(o.journal->bytes() < before);
		CHECK(fileSize(path) < before);
	}
	auto r = openJournal(path);
	REQUIRE(r.ok());
	CHECK(r.report.dirtyChunks == 2);
	CHECK(r.state->load(2).phase() == ChunkPhase::Dirty);
	CHECK(r.state->load(9).phase() == ChunkPhase::Dirty);
	CHECK(r.state->load(0).phase() == ChunkPhase::Local);
	CHECK(r.report.localChunks == 7);
}

// LocalCache: the directory around the journal.

namespace {

struct OpenedCache {
	std::unique_ptr<ChunkState> state = std::make_unique<ChunkState>(kChunks);
	std::unique_ptr<LocalCache> cache;
	Error error;
};

OpenedCache openCache(const std::string &dir, const JournalIdentity &identity = kIdentity, bool discard = false)
{
	OpenedCache o;
	o.state = std::make_unique<ChunkState>((identity.size + identity.chunk - 1) / identity.chunk);
	auto c = LocalCache::open(dir, identity, *o.state, discard);
	if (c)
		o.cache = std::move(*c);
	else
		o.error = c.error();
	return o;
}

} // namespace

TEST_CASE("cache: a memory cache has no journal", "[local_cache]")
{
	for (std::string dir : { "", "memory" }) {
		auto c = openCache(dir);
		REQUIRE(c.cache);
		CHECK_FALSE(c.cache->persistent());
		CHECK(c.cache->journal() == nullptr);
		CHECK(c.cache->data()->size() == kSize);
		CHECK_FALSE(c.cache->replay().resumed);
	}
}

TEST_CASE("cache: a directory holds data, journal and lock, and resumes", "[local_cache]")
{
	r3test::TempDir tmp;
	std::string dir = tmp / "cache";
	auto data = r3test::pattern(kChunk, 4);
	{
		auto c = openCache(dir);
		REQUIRE(c.cache);
		CHECK(c.cache->persistent());
		CHECK(c.cache->dir() == dir);
		CHECK(std::filesystem::exists(dir + "/data"));
		CHECK(std::filesystem::exists(dir + "/journal"));
		CHECK(std::filesystem::exists(dir + "/lock"));
		bool wasClean = false;
		REQUIRE(c.state->beginWrite(3, true, wasClean) == ChunkState::Begin::Started);
		REQUIRE(c.cache->journal()->recordDirty(3));
		REQUIRE(c.cache->data()->writeAt(data, 3 * kChunk));
		c.state->endWrite(3);
		REQUIRE(c.cache->journal()->checkpoint(*c.cache->data(), true));
	}
	auto c = openCache(dir);
	REQUIRE(c.cache);
	CHECK(c.cache->replay().resumed);
	CHECK(c.cache->replay().dirtyChunks == 1);
	CHECK(c.state->load(3).phase() == ChunkPhase::Dirty);
	CHECK(r3test::readRange(*c.cache->data(), 3 * kChunk, kChunk) == data);
}

TEST_CASE("cache: a second open of the same directory is refused with EBUSY", "[local_cache]")
{
	r3test::TempDir tmp;
	std::string dir = tmp / "cache";
	auto first = openCache(dir);
	REQUIRE(first.cache);
	auto second = openCache(dir);
	REQUIRE_FALSE(second.cache);
	CHECK(second.error.code.value() == EBUSY);
	CHECK(contains(second.error.message, "already in use"));
	CHECK(contains(second.error.message, dir));
	// The refused open did not disturb the holder's lock file or journal.
	auto third = openCache(dir);
	CHECK(third.error.code.value() == EBUSY);
	first.cache.reset();
	auto after = openCache(dir);
	CHECK(after.cache);
}

TEST_CASE("cache: a path that cannot be a directory is refused", "[local_cache]")
{
	r3test::TempDir tmp;
	std::string file = tmp / "plain-file";
	std::ofstream(file) << "x";
	auto c = openCache(file);
	REQUIRE_FALSE(c.cache);
	CHECK(c.error.code.value() == ENOTDIR);
	CHECK(contains(c.error.message, file));
	auto nested = openCache(tmp / "missing/parent/cache");
	REQUIRE_FALSE(nested.cache);
	CHECK(nested.error.code.value() == ENOENT);
	CHECK(contains(nested.error.message, "cannot create the directory"));
}

TEST_CASE("cache: a data file of another size is refused, unless discarded", "[local_cache]")
{
	r3test::TempDir tmp;
	std::string dir = tmp / "cache";
	{
		auto c = openCache(dir);
		REQUIRE(c.cache);
		REQUIRE(c.cache->data()->writeAt(r3test::pattern(kChunk, 1), 0));
	}
	JournalIdentity bigger{ 2 * kSize, kChunk, kIdentity.remote };
	auto refused = openCache(dir, bigger);
	REQUIRE_FALSE(refused.cache);
	CHECK(refused.error.code.value() == EMEDIUMTYPE);
	CHECK(contains(refused.error.message, "discard-local"));
	auto discarded = openCache(dir, bigger, true);
	REQUIRE(discarded.cache);
	CHECK_FALSE(discarded.cache->replay().resumed);
	CHECK(discarded.cache->data()->size() == 2 * kSize);
	CHECK(r3test::allZero(r3test::readRange(*discarded.cache->data(), 0, kChunk))); // the old data is gone
}
