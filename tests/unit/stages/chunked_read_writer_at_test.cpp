#include "stages/chunked_read_writer_at.hpp"

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "spy_read_writer_at.hpp"
#include "test_support.hpp"

using namespace r3d;
using r3d::stages::ChunkedReadWriterAt;

namespace {

constexpr uint64_t kChunk = 4096;

struct Guarded {
	std::shared_ptr<r3test::SpyReadWriterAt> spy;
	ChunkedReadWriterAt guard;
	explicit Guarded(uint64_t size)
		: spy(std::make_shared<r3test::SpyReadWriterAt>(
			  std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value())))),
		  guard(spy, kChunk)
	{
	}
};

} // namespace

TEST_CASE("the chunked guard passes single aligned chunks", "[chunked]")
{
	Guarded g(8 * kChunk);
	auto data = r3test::pattern(kChunk, 1);
	REQUIRE(g.guard.writeAt(data, 3 * kChunk));
	std::vector<std::byte> back(kChunk);
	REQUIRE(g.guard.readAt(back, 3 * kChunk));
	CHECK(back == data);
	CHECK(g.spy->calls().size() == 2);
}

TEST_CASE("the chunked guard rejects unaligned offsets and wrong lengths untouched", "[chunked]")
{
	Guarded g(8 * kChunk);
	std::vector<std::byte> buf(kChunk);
	std::vector<std::byte> small(kChunk - 1);
	std::vector<std::byte> twice(2 * kChunk);
	CHECK(g.guard.readAt(buf, 1).error().value() == EINVAL);
	CHECK(g.guard.writeAt(buf, kChunk / 2).error().value() == EINVAL);
	CHECK(g.guard.readAt(small, 0).error().value() == EINVAL);
	CHECK(g.guard.writeAt(twice, 0).error().value() == EINVAL);
	CHECK(g.guard.trim(0, 2 * kChunk).error().value() == EINVAL);
	CHECK(g.guard.writeZeroes(10, kChunk).error().value() == EINVAL);
	CHECK(g.spy->calls().empty());
}

TEST_CASE("the chunked guard accepts the short last chunk and nothing past the end", "[chunked]")
{
	Guarded g(2 * kChunk + 512);
	std::vector<std::byte> tail(512);
	std::vector<std::byte> full(kChunk);
	CHECK(g.guard.readAt(tail, 2 * kChunk));
	CHECK(g.guard.readAt(full, 2 * kChunk).error().value() == EINVAL);
	CHECK(g.guard.readAt(full, 3 * kChunk).error().value() == EINVAL);
	CHECK(g.guard.writeAt(tail, 4 * kChunk).error().value() == ENOSPC); // the ReadWriterAt contract
	CHECK(g.guard.trim(3 * kChunk, kChunk).error().value() == ENOSPC);
}
