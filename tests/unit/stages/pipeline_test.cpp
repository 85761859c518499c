#include "stages/pipeline.hpp"

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "spy_read_writer_at.hpp"
#include "stages/lockable_read_writer_at.hpp"
#include "stages/tracking_read_writer_at.hpp"
#include "test_support.hpp"

using namespace r3d;
using r3d::stages::buildPipeline;
using r3d::stages::PipelineSpec;
using r3d::stages::resolveChunk;

namespace {

// A memory backend that insists on whole chunks, like a chunk store.
class ChunkedMemory final : public stages::ForwardingReadWriterAt
{
public:
	ChunkedMemory(uint64_t size, uint64_t chunk)
		: ForwardingReadWriterAt(std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()))),
		  chunk_(chunk)
	{
	}
	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override
	{
		if (offset % chunk_ || buf.size() % chunk_)
			return unexpected(EINVAL);
		++calls;
		return next_->readAt(buf, offset);
	}
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		if (offset % chunk_ || buf.size() % chunk_)
			return unexpected(EINVAL);
		++calls;
		return next_->writeAt(buf, offset);
	}
	uint64_t preferredChunk() const override { return chunk_; }
	int calls = 0;

private:
	uint64_t chunk_;
};

} // namespace

TEST_CASE("the chunk is the larger of the asked-for and the backend's, if one divides the other", "[pipeline]")
{
	CHECK(resolveChunk(0, 0).value() == 0);
	CHECK(resolveChunk(4096, 0).value() == 4096);
	CHECK(resolveChunk(0, 65536).value() == 65536);
	CHECK(resolveChunk(4096, 65536).value() == 65536);
	CHECK(resolveChunk(131072, 65536).value() == 131072);
	auto bad = resolveChunk(4096 * 3, 65536);
	REQUIRE(!bad);
	CHECK_THAT(bad.error().message, Catch::Contains("does not fit"));
}

TEST_CASE("a backend that takes any offset gets no stage when callers send what it wants", "[pipeline]")
{
	auto mem = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(1 << 20).value()));
	auto p = buildPipeline(mem, PipelineSpec{ 4096, 4096 });
	REQUIRE(p);
	CHECK(p->top == mem);
	CHECK(p->chunk == 4096);
	CHECK(p->description == "backend");
}

TEST_CASE("a chunk store gets exactly one Arbitrary stage, which batches runs of whole chunks", "[pipeline]")
{
	auto store = std::make_shared<ChunkedMemory>(1 << 20, 65536);
	// The daemon's default chunk is smaller than the store's: the store's wins.
	auto p = buildPipeline(store, PipelineSpec{ 4096, 4096 });
	REQUIRE(p);
	CHECK(p->chunk == 65536);
	CHECK(p->description == "arbitrary(64 KiB) → backend");
	CHECK(p->top->preferredChunk() == 0);

	auto data = r3test::pattern(100000, 5);
	REQUIRE(p->top->writeAt(data, 12345));
	std::vector<std::byte> back(data.size());
	REQUIRE(p->top->readAt(back, 12345));
	CHECK(back == data);

	store->calls = 0;
	std::vector<std::byte> run(4 * 65536);
	REQUIRE(p->top->readAt(run, 65536));
	CHECK(store->calls == 1);
}

TEST_CASE("tracking and lockable sit on top when asked for", "[pipeline]")
{
	auto store = std::make_shared<ChunkedMemory>(1 << 20, 65536);
	PipelineSpec spec;
	spec.tracking = true;
	spec.lockable = true;
	auto p = buildPipeline(store, spec);
	REQUIRE(p);
	REQUIRE(p->tracking);
	REQUIRE(p->lock);
	CHECK(p->top == p->lock);
	CHECK(p->description == "lockable → tracking → arbitrary(64 KiB) → backend");
	p->tracking->track();
	auto data = r3test::pattern(10, 1);
	REQUIRE(p->top->writeAt(data, 65536 * 3 + 5));
	CHECK(p->tracking->syncDirty() == std::vector<uint64_t>{ 3 });
}

TEST_CASE("a spec that cannot be built is refused with a reason", "[pipeline]")
{
	auto store = std::make_shared<ChunkedMemory>(1 << 20, 65536);
	CHECK(!buildPipeline(store, PipelineSpec{ 3 * 4096, 1 }));
	CHECK(!buildPipeline(nullptr, PipelineSpec{}));
	CHECK(!buildPipeline(store, PipelineSpec{ 0, 0 }));
}
