#include "backends/directory_backend.hpp"

#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "test_support.hpp"

using namespace r3d;
using r3d::backends::DirectoryBackend;

namespace {

size_t chunkFiles(const std::filesystem::path &dir)
{
	size_t n = 0;
	for (const auto &e : std::filesystem::directory_iterator(dir))
		n += e.path().extension() == ".chunk";
	return n;
}

} // namespace

TEST_CASE("untouched chunks have no file; trimmed whole chunks lose theirs", "[dir]")
{
	r3test::TempDir tmp;
	auto d = DirectoryBackend::open(tmp.path().string(), 64 * 4096, 4096).value();
	CHECK(chunkFiles(tmp.path()) == 0);
	auto data = r3test::pattern(3 * 4096, 1);
	REQUIRE(d->writeAt(data, 4096 + 10)); // chunks 1..4
	CHECK(chunkFiles(tmp.path()) == 4);
	REQUIRE(d->trim(2 * 4096, 2 * 4096)); // chunks 2 and 3 whole
	CHECK(chunkFiles(tmp.path()) == 2);
	std::vector<std::byte> back(2 * 4096);
	REQUIRE(d->readAt(back, 2 * 4096));
	CHECK(r3test::allZero(back));
}

TEST_CASE("open files stay within the limit under concurrent load", "[dir]")
{
	r3test::TempDir tmp;
	auto d = DirectoryBackend::open(tmp.path().string(), 256 * 4096, 4096, 8).value();
	std::vector<std::thread> threads;
	for (int t = 0; t < 4; ++t) {
		threads.emplace_back([&, t] {
			auto data = r3test::pattern(4096, static_cast<uint32_t>(t));
			for (uint64_t c = static_cast<uint64_t>(t); c < 256; c += 4)
				REQUIRE(d->writeAt(data, c * 4096));
		});
	}
	for (auto &t : threads)
		t.join();
	CHECK(d->openFiles() <= 8);
	for (uint64_t c = 0; c < 256; ++c) {
		std::vector<std::byte> back(4096);
		REQUIRE(d->readAt(back, c * 4096));
		REQUIRE(back == r3test::pattern(4096, static_cast<uint32_t>(c % 4)));
	}
	REQUIRE(d->sync());
}

TEST_CASE("a corrupt r3map.meta is refused with a message, never used", "[dir]")
{
	r3test::TempDir tmp;
	{
		std::ofstream(tmp.path() / "r3map.meta") << "size=1048576\nchunk=0\n";
	}
	auto d = DirectoryBackend::open(tmp.path().string(), std::nullopt, std::nullopt);
	REQUIRE_FALSE(d);
	CHECK_THAT(d.error().message, Catch::Contains("is corrupt"));
}
