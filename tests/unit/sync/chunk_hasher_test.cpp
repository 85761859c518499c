#include "sync/chunk_hasher.hpp"

#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <r3d/unique_fd.hpp>
#include <xxhash.h>

#include "base/thread_pool.hpp"
#include "sync/source_mapping.hpp"
#include "test_support.hpp"

using namespace r3d::sync;

namespace {

ChunkHasher::ReadFn readFrom(const std::vector<std::byte> &data)
{
	return [&data](std::span<std::byte> buf, uint64_t offset) -> r3d::ResultMsg<void> {
		std::memcpy(buf.data(), data.data() + offset, buf.size());
		return {};
	};
}

} // namespace

TEST_CASE("hashBytes is libxxhash's XXH3-128", "[hasher]")
{
	auto data = r3test::pattern(10000, 7);
	XXH128_hash_t ref = XXH3_128bits(data.data(), data.size());
	ChunkHash h = hashBytes(data);
	CHECK(h.high == ref.high64);
	CHECK(h.low == ref.low64);
	// XXH3-128 of the empty input, as xxhsum -H2 prints it: 99aa06d3014798d86001c324468d497f.
	ChunkHash empty = hashBytes({});
	CHECK(empty.high == 0x99aa06d3014798d8ull);
	CHECK(empty.low == 0x6001c324468d497full);
}

TEST_CASE("a hash survives its wire form", "[hasher]")
{
	ChunkHash h{ 0x0102030405060708ull, 0x1112131415161718ull };
	std::byte wire[kHashBytes];
	putHash(h, wire);
	CHECK(wire[0] == std::byte{ 0x01 });
	CHECK(wire[15] == std::byte{ 0x18 });
	CHECK(getHash(wire) == h);
}

TEST_CASE("parallel hashing equals serial hashing, short last chunk included", "[hasher]")
{
	const uint64_t chunk = 4096;
	auto data = r3test::pattern(chunk * 3000 + 123, 3);
	ChunkHasher serial(nullptr, chunk);
	auto a = serial.hash(readFrom(data), data.size());
	REQUIRE(a);
	REQUIRE(a->size() == 3001);
	r3d::ThreadPool pool(4);
	ChunkHasher parallel(&pool, chunk);
	auto b = parallel.hash(readFrom(data), data.size());
	REQUIRE(b);
	CHECK(*a == *b);
	for (uint64_t i : { uint64_t{ 0 }, uint64_t{ 1717 }, uint64_t{ 3000 } }) {
		uint64_t len = std::min<uint64_t>(chunk, data.size() - i * chunk);
		CHECK((*a)[i] == hashBytes(std::span(data.data() + i * chunk, len)));
	}
	auto none = parallel.hash(readFrom(data), 0);
	REQUIRE(none);
	CHECK(none->empty());
}

TEST_CASE("a read error fails the hash with its message", "[hasher]")
{
	r3d::ThreadPool pool(2);
	ChunkHasher hasher(&pool, 4096);
	auto r = hasher.hash([](std::span<std::byte>, uint64_t) -> r3d::ResultMsg<void> { return r3d::fail(EIO, "boom"); },
			     1 << 24);
	REQUIRE_FALSE(r);
	CHECK(r.error().message == "boom");
}

TEST_CASE("hashing a kept mapping equals reading, and survives the file shrinking under it", "[hasher]")
{
	r3test::TempDir dir;
	const uint64_t chunk = 64 * 1024;
	auto data = r3test::pattern(chunk * 40 + 999, 5);
	std::string path = dir / "src.img";
	std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(data.data()),
						    static_cast<std::streamsize>(data.size()));
	r3d::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
	REQUIRE(fd.isValid());
	r3d::ThreadPool pool(2);
	ChunkHasher hasher(&pool, chunk);
	SourceMapping mapping;
	REQUIRE(mapping.map(fd.get(), data.size()));
	const std::byte *first = mapping.data();
	HashStats stats;
	auto mapped = hasher.hashMapped(mapping.data(), fd.get(), data.size(), &stats);
	auto read = hasher.hashFile(fd.get(), data.size());
	REQUIRE(mapped);
	REQUIRE(read);
	CHECK(*mapped == *read);
	CHECK(stats.threads >= 1);
	CHECK(stats.cpuSeconds > 0);
	// The same file at the same size keeps its mapping; writes show through it.
	REQUIRE(mapping.map(fd.get(), data.size()));
	CHECK(mapping.data() == first);
	data[3 * chunk] = ~data[3 * chunk];
	REQUIRE(::pwrite(fd.get(), &data[3 * chunk], 1, 3 * chunk) == 1);
	auto again = hasher.hashMapped(mapping.data(), fd.get(), data.size());
	REQUIRE(again);
	CHECK((*again)[3] == hashBytes(std::span(data.data() + 3 * chunk, chunk)));

	// Truncated to 10.5 chunks under a mapping of 41: the pages past the end raise SIGBUS,
	// which the hasher takes as zeros, as pread does.
	const uint64_t shrunk = chunk * 10 + chunk / 2;
	REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(shrunk)) == 0);
	auto cut = hasher.hashMapped(mapping.data(), fd.get(), data.size());
	REQUIRE(cut);
	auto cutRead = hasher.hashFile(fd.get(), data.size());
	REQUIRE(cutRead);
	CHECK(*cut == *cutRead);
	std::vector<std::byte> zeros(chunk);
	CHECK((*cut)[20] == hashBytes(zeros));
	// A SIGBUS of no hashing thread is still fatal: not tested here, it would end the test.
}
