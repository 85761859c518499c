// One behaviour contract, compiled once per local backend (R3_TEST_BACKEND).

#include <r3d/backend_factory.hpp>

#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "test_support.hpp"

using namespace r3d;

#ifndef R3_TEST_BACKEND
#error "R3_TEST_BACKEND must name the backend under test"
#endif

namespace {

constexpr uint64_t kSize = (1 << 20) + 1000; // not a multiple of any chunk size

struct Fixture {
	r3test::TempDir tmp;
	std::string kind = R3_TEST_BACKEND;

	std::string uri() const
	{
		if (kind == "memory")
			return "memory:" + std::to_string(kSize);
		if (kind == "file")
			return "file:" + (tmp / "disk.img") + "?size=" + std::to_string(kSize);
		return "dir:" + (tmp / "chunks") + "?size=" + std::to_string(kSize) + "&chunk=4K";
	}
	std::shared_ptr<ReadWriterAt> open() const
	{
		auto r = openBackend(uri());
		if (!r)
			FAIL(r.error().message);
		return *r;
	}
	bool persistent() const { return kind != "memory"; }
};

std::vector<std::byte> readAll(ReadWriterAt &rw, uint64_t offset, uint64_t length)
{
	std::vector<std::byte> out(length);
	auto r = rw.readAt(out, offset);
	REQUIRE(r);
	return out;
}

} // namespace

TEST_CASE("a new device has the asked size and reads as zeros", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	CHECK(rw->size() == kSize);
	CHECK(r3test::allZero(readAll(*rw, 0, kSize)));
}

TEST_CASE("unaligned writes spanning chunks read back exactly", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	auto a = r3test::pattern(3 * 4096 + 77, 1);
	auto b = r3test::pattern(5, 2);
	REQUIRE(rw->writeAt(a, 4096 - 33));
	REQUIRE(rw->writeAt(b, 100000));
	CHECK(readAll(*rw, 4096 - 33, a.size()) == a);
	CHECK(readAll(*rw, 100000, b.size()) == b);
	CHECK(r3test::allZero(readAll(*rw, 0, 4096 - 33)));
	CHECK(r3test::allZero(readAll(*rw, 4096 - 33 + a.size(), 100)));
}

TEST_CASE("the last bytes of the device are usable", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	auto tail = r3test::pattern(3000, 3);
	REQUIRE(rw->writeAt(tail, kSize - tail.size()));
	CHECK(readAll(*rw, kSize - tail.size(), tail.size()) == tail);
	std::vector<std::byte> none;
	CHECK(rw->readAt(none, kSize));
	CHECK(rw->writeAt(std::span<const std::byte>(none), kSize));
}

TEST_CASE("I/O past the end fails and changes nothing", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	auto data = r3test::pattern(4096, 4);
	auto w = rw->writeAt(data, kSize - 100);
	REQUIRE_FALSE(w);
	CHECK(w.error().value() == ENOSPC);
	CHECK(rw->writeAt(data, UINT64_MAX - 10).error().value() == ENOSPC);
	std::vector<std::byte> buf(200);
	auto r = rw->readAt(buf, kSize - 100);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EINVAL);
	CHECK(rw->trim(kSize, 1).error().value() == ENOSPC);
	CHECK(r3test::allZero(readAll(*rw, 0, kSize)));
}

TEST_CASE("concurrent writers on different chunks all land", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	constexpr int kThreads = 8;
	constexpr uint64_t kSlot = 8192;
	std::vector<std::thread> threads;
	for (int t = 0; t < kThreads; ++t) {
		threads.emplace_back([&, t] {
			for (uint64_t i = 0; i < 8; ++i) {
				uint64_t slot = static_cast<uint64_t>(t) + i * kThreads;
				auto data = r3test::pattern(kSlot, static_cast<uint32_t>(slot));
				REQUIRE(rw->writeAt(data, slot * kSlot));
			}
		});
	}
	for (auto &t : threads)
		t.join();
	for (uint64_t slot = 0; slot < kThreads * 8; ++slot)
		REQUIRE(readAll(*rw, slot * kSlot, kSlot) == r3test::pattern(kSlot, static_cast<uint32_t>(slot)));
}

TEST_CASE("trim and writeZeroes read back as zeros and spare the neighbours", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	auto data = r3test::pattern(256 * 1024, 5);
	REQUIRE(rw->writeAt(data, 0));
	REQUIRE(rw->trim(65536, 65536));
	REQUIRE(rw->writeZeroes(4096 + 100, 300));
	auto after = readAll(*rw, 0, data.size());
	for (size_t i = 0; i < data.size(); ++i) {
		bool zero = (i >= 65536 && i < 131072) || (i >= 4196 && i < 4496);
		REQUIRE(after[i] == (zero ? std::byte{ 0 } : data[i]));
	}
}

TEST_CASE("extents cover the range and never call written data a hole", "[conformance]")
{
	Fixture f;
	auto rw = f.open();
	auto data = r3test::pattern(65536, 6);
	REQUIRE(rw->writeAt(data, 131072));
	auto ext = rw->extents(0, kSize);
	REQUIRE(ext);
	uint64_t pos = 0;
	bool sawHole = false;
	for (const auto &e : *ext) {
		REQUIRE(e.length > 0);
		bool overlapsData = pos < 131072 + 65536 && pos + e.length > 131072;
		if (overlapsData)
			CHECK_FALSE(e.zero);
		sawHole |= e.hole;
		pos += e.length;
	}
	CHECK(pos == kSize);
	if (f.kind != "file") // tmpfs/ext4 both report holes too, but not every filesystem does
		CHECK(sawHole);
}

TEST_CASE("data survives sync and reopening (persistent backends)", "[conformance]")
{
	Fixture f;
	auto data = r3test::pattern(10000, 7);
	{
		auto rw = f.open();
		REQUIRE(rw->writeAt(data, 5000));
		REQUIRE(rw->sync());
	}
	if (!f.persistent())
		return; // memory: nothing outlives the process by design
	auto again = f.open();
	CHECK(again->size() == kSize);
	CHECK(readAll(*again, 5000, data.size()) == data);
}
