#include "sync/sync_receiver.hpp"

#include <csignal>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "sync/sync_messages.hpp"
#include "test_support.hpp"

using namespace r3d::sync;

namespace {

constexpr uint64_t kChunk = 4096;

std::vector<std::byte> readFile(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	std::vector<std::byte> out(raw.size());
	std::memcpy(out.data(), raw.data(), raw.size());
	return out;
}

void writeFile(const std::string &path, const std::vector<std::byte> &data)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out.write(reinterpret_cast<const char *>(data.data()), static_cast<std::streamsize>(data.size()));
}

/// Applies `data` whole as the next generation.
void applyAll(SyncReceiver &r, const std::vector<std::byte> &data, bool commit = true)
{
	REQUIRE(r.begin(r.generation() + 1, data.size()));
	SyncShape shape{ data.size(), kChunk };
	for (uint64_t i = 0; i < shape.chunks(); ++i)
		REQUIRE(r.addChunk(i, std::span(data.data() + i * kChunk, shape.lengthOf(i))));
	if (commit)
		REQUIRE(r.commit(r.generation() + 1));
}

} // namespace

TEST_CASE("a receiver applies generations in both modes, size changes included", "[receiver]")
{
	for (ApplyMode mode : { ApplyMode::Journal, ApplyMode::Rename }) {
		r3test::TempDir dir;
		auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, ReceiverOptions{ mode, true }, nullptr);
		REQUIRE(r);
		CHECK((*r)->generation() == 0);
		CHECK((*r)->size() == 0);
		auto v1 = r3test::pattern(kChunk * 5 + 10, 1);
		applyAll(**r, v1);
		CHECK(readFile(dir / "copy") == v1);
		CHECK((*r)->generation() == 1);
		CHECK((*r)->hashes().size() == 6);
		CHECK((*r)->hashes()[5] == hashBytes(std::span(v1.data() + 5 * kChunk, 10)));
		// Shrink and change one chunk.
		auto v2 = std::vector<std::byte>(v1.begin(), v1.begin() + kChunk * 3);
		v2[kChunk + 1] = std::byte{ 0x55 };
		REQUIRE((*r)->begin(2, v2.size()));
		REQUIRE((*r)->addChunk(1, std::span(v2.data() + kChunk, kChunk)));
		REQUIRE((*r)->commit(2));
		CHECK(readFile(dir / "copy") == v2);
		CHECK((*r)->lastChanged() == std::vector<uint64_t>{ 1 });
		CHECK_FALSE(std::filesystem::exists(dir / ".copy.r3journal"));
		CHECK_FALSE(std::filesystem::exists(dir / ".copy.r3tmp"));

		// Reopened: the sidecar gives the hashes and the generation without a rehash.
		r->reset();
		ReceiverOpenReport report;
		auto again = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr, &report);
		REQUIRE(again);
		CHECK_FALSE(report.rehashed);
		CHECK((*again)->generation() == 2);
		CHECK((*again)->size() == v2.size());
		// Chunks out of order or of the wrong length are refused.
		REQUIRE((*again)->begin(3, v2.size()));
		REQUIRE((*again)->addChunk(2, std::span(v2.data() + 2 * kChunk, kChunk)));
		CHECK_FALSE((*again)->addChunk(1, std::span(v2.data(), kChunk)));
		(*again)->abort();
		REQUIRE((*again)->begin(3, v2.size()));
		CHECK_FALSE((*again)->addChunk(0, std::span(v2.data(), 100)));
		CHECK_FALSE((*again)->commit(4));
	}
}

TEST_CASE("a stale sidecar makes the receiver rehash", "[receiver]")
{
	r3test::TempDir dir;
	auto v1 = r3test::pattern(kChunk * 3, 2);
	{
		auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr);
		REQUIRE(r);
		applyAll(**r, v1);
	}
	auto changed = v1;
	changed[0] = ~changed[0];
	writeFile(dir / "copy", changed); // someone else wrote the copy
	ReceiverOpenReport report;
	auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr, &report);
	REQUIRE(r);
	CHECK(report.rehashed);
	CHECK((*r)->generation() == 1);
	CHECK((*r)->hashes()[0] == hashBytes(std::span(changed.data(), kChunk)));
}

TEST_CASE("a committed journal is replayed at open, an uncommitted one dropped", "[receiver]")
{
	r3test::TempDir dir;
	auto v1 = r3test::pattern(kChunk * 4, 3);
	auto v2 = r3test::pattern(kChunk * 4, 4);
	{
		auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr);
		REQUIRE(r);
		applyAll(**r, v1);
		// A crash before the commit: chunks in the journal, never committed.
		applyAll(**r, v2, false);
		CHECK(std::filesystem::exists(dir / ".copy.r3journal"));
		auto keep = dir / "journal.bak";
		std::filesystem::copy_file(dir / ".copy.r3journal", keep);
		(*r)->abort();
		std::filesystem::rename(keep, dir / ".copy.r3journal");
	}
	{
		ReceiverOpenReport report;
		auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr, &report);
		REQUIRE(r);
		CHECK(report.droppedJournal);
		CHECK((*r)->generation() == 1);
		CHECK(readFile(dir / "copy") == v1);
		CHECK_FALSE(std::filesystem::exists(dir / ".copy.r3journal"));
	}
	{
		// A crash after the journal commit, before (or during) the in-place apply: the
		// journal is committed, the copy still the old one.
		auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr);
		REQUIRE(r);
		applyAll(**r, v2, false);
		auto keep = dir / "journal.bak";
		std::filesystem::copy_file(dir / ".copy.r3journal", keep);
		(*r)->abort();
		// Mark the copy of the journal committed, as commit() does before the apply.
		int fd = ::open(keep.c_str(), O_RDWR);
		REQUIRE(fd >= 0);
		uint64_t count = 4, one = 1;
		REQUIRE(::pwrite(fd, &count, 8, 32) == 8);
		REQUIRE(::pwrite(fd, &one, 8, 40) == 8);
		::close(fd);
		std::filesystem::rename(keep, dir / ".copy.r3journal");
	}
	ReceiverOpenReport report;
	auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr, &report);
	REQUIRE(r);
	CHECK(report.replayedJournal);
	CHECK((*r)->generation() == 2);
	CHECK(readFile(dir / "copy") == v2);
	CHECK((*r)->hashes()[3] == hashBytes(std::span(v2.data() + 3 * kChunk, kChunk)));
}

TEST_CASE("a write error fails the generation and leaves the previous one", "[receiver]")
{
	// RLIMIT_FSIZE makes writes past it fail (EFBIG) like a full disk would, without root.
	r3test::TempDir dir;
	auto v1 = r3test::pattern(kChunk * 2, 5);
	auto r = SyncReceiver::open(dir.path().string(), "copy", kChunk, {}, nullptr);
	REQUIRE(r);
	applyAll(**r, v1);
	std::signal(SIGXFSZ, SIG_IGN);
	rlimit old{};
	REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
	rlimit tight = old;
	tight.rlim_cur = kChunk * 4;
	REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
	auto big = r3test::pattern(kChunk * 16, 6);
	REQUIRE((*r)->begin(2, big.size()));
	bool failed = false;
	for (uint64_t i = 0; i < 16 && !failed; ++i)
		failed = !(*r)->addChunk(i, std::span(big.data() + i * kChunk, kChunk));
	REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
	CHECK(failed);
	CHECK_FALSE((*r)->commit(2));
	CHECK((*r)->generation() == 1);
	CHECK(readFile(dir / "copy") == v1);
	CHECK_FALSE(std::filesystem::exists(dir / ".copy.r3journal"));
	// And the next generation goes through.
	applyAll(**r, big);
	CHECK(readFile(dir / "copy") == big);
}
