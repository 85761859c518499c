#include "stages/arbitrary_read_writer_at.hpp"

#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "stages/chunked_read_writer_at.hpp"
#include "spy_read_writer_at.hpp"
#include "test_support.hpp"

using namespace r3d;
using r3d::stages::ArbitraryReadWriterAt;
using r3d::stages::ChunkedReadWriterAt;
using r3test::pattern;

namespace {

constexpr uint64_t kChunk = 4096;

// memory <- spy <- chunked guard <- arbitrary: the guard fails any call that is not one
// whole chunk, so every test below also proves the stage only emits whole chunks.
struct Stack {
	std::shared_ptr<ReadWriterAt> memory;
	std::shared_ptr<r3test::SpyReadWriterAt> spy;
	std::shared_ptr<ArbitraryReadWriterAt> top;

	explicit Stack(uint64_t size)
	{
		memory = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
		spy = std::make_shared<r3test::SpyReadWriterAt>(memory);
		top = std::make_shared<ArbitraryReadWriterAt>(std::make_shared<ChunkedReadWriterAt>(spy, kChunk), kChunk);
	}
};

std::vector<std::byte> readRaw(ReadWriterAt &rw, uint64_t offset, size_t length)
{
	std::vector<std::byte> out(length);
	REQUIRE(rw.readAt(out, offset));
	return out;
}

} // namespace

TEST_CASE("an unaligned write spanning three chunks lands exactly", "[arbitrary]")
{
	Stack s(16 * kChunk);
	auto data = pattern(2 * kChunk + 100, 1);
	uint64_t offset = kChunk + 1000; // head in chunk 1, body chunk 2, tail in chunk 3
	REQUIRE(s.top->writeAt(data, offset));

	CHECK(readRaw(*s.memory, offset, data.size()) == data);
	CHECK(r3test::allZero(readRaw(*s.memory, 0, offset)));
	CHECK(r3test::allZero(readRaw(*s.memory, offset + data.size(), 2000)));

	std::vector<std::byte> back(data.size());
	REQUIRE(s.top->readAt(back, offset));
	CHECK(back == data);
}

TEST_CASE("partial writes keep the rest of the chunk (read-modify-write)", "[arbitrary]")
{
	Stack s(4 * kChunk);
	auto base = pattern(kChunk, 2);
	REQUIRE(s.memory->writeAt(base, 0));
	auto patch = pattern(10, 3);
	REQUIRE(s.top->writeAt(patch, 100));
	auto expect = base;
	std::memcpy(expect.data() + 100, patch.data(), patch.size());
	CHECK(readRaw(*s.memory, 0, kChunk) == expect);
}

TEST_CASE("whole aligned chunks bypass the copy", "[arbitrary]")
{
	Stack s(8 * kChunk);
	auto data = pattern(3 * kChunk, 4);
	s.spy->reset();
	REQUIRE(s.top->writeAt(data, 2 * kChunk));
	auto writes = s.spy->calls();
	REQUIRE(writes.size() == 3);
	for (size_t i = 0; i < 3; ++i) {
		CHECK(writes[i].op == 'w');
		CHECK(writes[i].offset == (2 + i) * kChunk);
		CHECK(writes[i].buffer == data.data() + i * kChunk); // the caller's own memory
	}

	std::vector<std::byte> back(3 * kChunk);
	s.spy->reset();
	REQUIRE(s.top->readAt(back, 2 * kChunk));
	auto reads = s.spy->calls();
	REQUIRE(reads.size() == 3);
	CHECK(reads[1].buffer == back.data() + kChunk);
	CHECK(back == data);
}

TEST_CASE("the last chunk of a device may be short", "[arbitrary]")
{
	uint64_t size = 3 * kChunk + 1000;
	Stack s(size);
	auto data = pattern(1500, 5);
	REQUIRE(s.top->writeAt(data, size - 1500)); // ends exactly at the device end
	CHECK(readRaw(*s.memory, size - 1500, 1500) == data);
	auto calls = s.spy->calls();
	REQUIRE_FALSE(calls.empty());
	CHECK(calls.back().length == 1000); // the short last chunk, whole
}

TEST_CASE("reads and writes past the end fail and write nothing", "[arbitrary]")
{
	Stack s(4 * kChunk);
	auto data = pattern(kChunk, 6);
	s.spy->reset();
	auto w = s.top->writeAt(data, 3 * kChunk + 1);
	REQUIRE_FALSE(w);
	CHECK(w.error().value() == ENOSPC);
	CHECK(s.spy->calls().empty());
	CHECK(r3test::allZero(readRaw(*s.memory, 0, 4 * kChunk)));

	std::vector<std::byte> buf(10);
	auto r = s.top->readAt(buf, 4 * kChunk - 5);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EINVAL);
	CHECK_FALSE(s.top->readAt(buf, UINT64_MAX - 3));
}

TEST_CASE("concurrent partial writes to one chunk do not undo each other", "[arbitrary]")
{
	Stack s(2 * kChunk);
	constexpr int kThreads = 8;
	constexpr int kRounds = 200;
	std::vector<std::thread> threads;
	for (int t = 0; t < kThreads; ++t) {
		threads.emplace_back([&, t] {
			for (int round = 0; round < kRounds; ++round) {
				std::byte value{ static_cast<unsigned char>(t * kRounds + round) };
				std::vector<std::byte> slice(kChunk / kThreads, value);
				REQUIRE(s.top->writeAt(slice, static_cast<uint64_t>(t) * slice.size()));
			}
		});
	}
	for (auto &t : threads)
		t.join();
	auto all = readRaw(*s.top, 0, kChunk);
	for (int t = 0; t < kThreads; ++t) {
		std::byte last{ static_cast<unsigned char>(t * kRounds + kRounds - 1) };
		for (size_t i = 0; i < kChunk / kThreads; ++i)
			REQUIRE(all[t * (kChunk / kThreads) + i] == last);
	}
}

TEST_CASE("trim and writeZeroes zero partial chunks and pass whole ones down", "[arbitrary]")
{
	Stack s(4 * kChunk);
	auto data = pattern(4 * kChunk, 7);
	REQUIRE(s.memory->writeAt(data, 0));
	REQUIRE(s.top->trim(kChunk / 2, 2 * kChunk));
	auto after = readRaw(*s.memory, 0, 4 * kChunk);
	for (uint64_t i = 0; i < 4 * kChunk; ++i) {
		bool zeroed = i >= kChunk / 2 && i < kChunk / 2 + 2 * kChunk;
		REQUIRE(after[i] == (zeroed ? std::byte{ 0 } : data[i]));
	}
	REQUIRE(s.top->writeZeroes(3 * kChunk, kChunk));
	CHECK(r3test::allZero(readRaw(*s.memory, 3 * kChunk, kChunk)));
	CHECK_FALSE(s.top->writeZeroes(3 * kChunk, kChunk + 1));
}

TEST_CASE("with batchRuns, whole chunks in a row reach next as one call; head and tail stay RMW", "[arbitrary][batch]")
{
	auto memory = std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(16 * kChunk).value()));
	auto spy = std::make_shared<r3test::SpyReadWriterAt>(memory);
	ArbitraryReadWriterAt top(spy, kChunk, true);

	auto data = pattern(3 * kChunk + 1100, 7);
	uint64_t offset = kChunk - 100; // tail of chunk 0, chunks 1-3 whole, head of chunk 4
	REQUIRE(top.writeAt(data, offset));
	auto calls = spy->calls();
	REQUIRE(calls.size() == 5); // RMW of chunk 0, one write of chunks 1-3, RMW of chunk 4
	CHECK((calls[2].op == 'w' && calls[2].offset == kChunk && calls[2].length == 3 * kChunk));
	CHECK(calls[2].buffer == data.data() + 100); // the caller's bytes, not a copy
	CHECK(readRaw(*memory, offset, data.size()) == data);

	spy->reset();
	std::vector<std::byte> back(data.size());
	REQUIRE(top.readAt(back, offset));
	CHECK(back == data);
	calls = spy->calls();
	REQUIRE(calls.size() == 3);
	CHECK((calls[1].op == 'r' && calls[1].offset == kChunk && calls[1].length == 3 * kChunk));
}
