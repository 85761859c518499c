#include "sync/chunk_hasher.hpp"

#include <cstring>

#include <catch2/catch.hpp>
#include <xxhash.h>

#include "base/thread_pool.hpp"
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
