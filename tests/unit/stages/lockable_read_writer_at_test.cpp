#include "stages/lockable_read_writer_at.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "fault_read_writer_at.hpp"
#include "test_support.hpp"

using namespace r3d;
using r3d::stages::LockableReadWriterAt;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<ReadWriterAt> memory(uint64_t size)
{
	return std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
}

} // namespace

TEST_CASE("readers block while locked and all wake on unlock", "[lockable]")
{
	auto lockable = std::make_shared<LockableReadWriterAt>(memory(1 << 20));
	lockable->lock();
	REQUIRE(lockable->locked());
	std::atomic<int> finished{ 0 };
	std::vector<std::thread> readers;
	for (int i = 0; i < 4; ++i) {
		readers.emplace_back([&] {
			std::vector<std::byte> buf(512);
			REQUIRE(lockable->readAt(buf, 0));
			++finished;
		});
	}
	// The readers cannot get through while locked: give them ample time to try.
	std::this_thread::sleep_for(100ms);
	CHECK(finished.load() == 0);
	lockable->unlock();
	for (auto &r : readers)
		r.join();
	CHECK(finished.load() == 4);
	CHECK_FALSE(lockable->locked());
}

TEST_CASE("writes issued while locked land after unlock", "[lockable]")
{
	auto lockable = std::make_shared<LockableReadWriterAt>(memory(1 << 20));
	lockable->lock();
	auto data = r3test::pattern(4096, 9);
	auto writer = std::async(std::launch::async, [&] { return lockable->writeAt(data, 8192).has_value(); });
	CHECK(writer.wait_for(100ms) == std::future_status::timeout);
	lockable->unlock();
	CHECK(writer.get());
	std::vector<std::byte> back(4096);
	REQUIRE(lockable->readAt(back, 8192));
	CHECK(back == data);
}

TEST_CASE("lock() waits for calls already in flight", "[lockable]")
{
	// Its reads wait until released, to hold a call "in flight".
	auto gate = std::make_shared<r3test::FaultReadWriterAt>(memory(1 << 20));
	gate->hold(r3test::FaultReadWriterAt::kReads);
	auto lockable = std::make_shared<LockableReadWriterAt>(gate);
	auto reader = std::async(std::launch::async, [&] {
		std::vector<std::byte> buf(16);
		return lockable->readAt(buf, 0).has_value();
	});
	gate->waitHeld();
	auto locker = std::async(std::launch::async, [&] { lockable->lock(); });
	CHECK(locker.wait_for(100ms) == std::future_status::timeout);
	gate->release();
	CHECK(reader.get());
	locker.get(); // returns once the in-flight read is out
	CHECK(lockable->locked());
	lockable->unlock();
}

TEST_CASE("replaceNext swaps where calls go, only while locked and only for the same size", "[lockable]")
{
	auto first = memory(1 << 20);
	auto second = memory(1 << 20);
	auto lockable = std::make_shared<LockableReadWriterAt>(first);
	auto data = r3test::pattern(4096, 3);
	CHECK(lockable->replaceNext(second).error().value() == EINVAL); // not locked
	lockable->lock();
	CHECK(lockable->replaceNext(memory(2 << 20)).error().value() == EINVAL);
	auto old = lockable->replaceNext(second);
	REQUIRE(old);
	CHECK(*old == first);
	CHECK(lockable->current() == second);
	lockable->unlock();
	REQUIRE(lockable->writeAt(data, 4096));
	std::vector<std::byte> back(4096);
	REQUIRE(second->readAt(back, 4096));
	CHECK(back == data);
	REQUIRE(first->readAt(back, 4096));
	CHECK(back != data);
}
