// The client across lost connections: resend after a server restart, EIO after the
// deadline, a hung server dropped after the request timeout.

#include <atomic>
#include <chrono>
#include <thread>

#include "fault_read_writer_at.hpp"
#include "rpc_test_support.hpp"

using namespace r3d;
using namespace r3d::transport;
using namespace std::chrono_literals;
using r3test::FaultReadWriterAt;
using r3test::Fixture;

namespace {

constexpr uint64_t kSize = 16 << 20;

} // namespace

TEST_CASE("a server restart stalls the writers, then everything lands", "[reconnect]")
{
	// Every write is slowed down so requests are still in flight when the server goes away.
	auto backend = std::make_shared<FaultReadWriterAt>(r3test::memoryBackend(kSize));
	backend->delay(FaultReadWriterAt::kWrites, 2ms);
	Fixture f(backend, [](auto &o) {
		o.connections = 2;
		o.backoffMax = 200ms;
	});

	constexpr int kThreads = 8;
	constexpr uint64_t kSlice = kSize / kThreads;
	constexpr size_t kBlock = 64 * 1024;
	std::atomic<int> failures{ 0 };
	std::atomic<uint64_t> written{ 0 };
	std::vector<std::thread> writers;
	for (int i = 0; i < kThreads; ++i) {
		writers.emplace_back([&, i] {
			for (uint64_t off = 0; off < kSlice; off += kBlock) {
				auto data = r3test::pattern(kBlock, static_cast<uint32_t>(i * kSlice + off));
				if (!f.client().write(data, i * kSlice + off))
					failures++;
				written += kBlock;
			}
		});
	}
	while (written < kSize / 4)
		std::this_thread::sleep_for(1ms);
	f.server().stop(); // requests in flight lose their replies
	uint64_t atCut = written;
	std::this_thread::sleep_for(1s);
	CHECK(written - atCut < kSize / 8); // stalled, give or take the replies already on their way
	f.restart();
	for (auto &w : writers)
		w.join();
	CHECK(failures == 0);
	CHECK(f.client().stats().reconnects >= 1);

	std::vector<std::byte> back(kBlock);
	for (int i = 0; i < kThreads; ++i)
		for (uint64_t off = 0; off < kSlice; off += kBlock) {
			REQUIRE(f.client().read(back, i * kSlice + off));
			REQUIRE(back == r3test::pattern(kBlock, static_cast<uint32_t>(i * kSlice + off)));
		}
}

TEST_CASE("past the deadline callers get EIO; the client recovers when the server returns", "[reconnect]")
{
	Fixture f(r3test::memoryBackend(kSize), [](auto &o) {
		o.deadline = 500ms;
		o.backoffMax = 100ms;
	});
	f.server().stop();

	std::vector<std::byte> buf(4096);
	auto start = std::chrono::steady_clock::now();
	auto r = f.client().read(buf, 0);
	auto took = std::chrono::steady_clock::now() - start;
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK(took >= 400ms);
	CHECK(took < 5s);
	CHECK(f.client().stats().expired >= 1);

	f.restart();
	bool recovered = false;
	for (int i = 0; i < 50 && !recovered; ++i)
		recovered = bool(f.client().read(buf, 0));
	CHECK(recovered);
}

TEST_CASE("a connection that stops answering is dropped and its requests re-sent", "[reconnect]")
{
	// The first read blocks until released: a server that stops answering.
	auto hang = std::make_shared<FaultReadWriterAt>(r3test::memoryBackend(kSize));
	hang->hangOnce(FaultReadWriterAt::kReads);
	Fixture f(hang, [](auto &o) { o.requestTimeout = 300ms; });
	std::vector<std::byte> buf(4096);
	auto start = std::chrono::steady_clock::now();
	REQUIRE(f.client().read(buf, 0)); // the first attempt hangs, the re-sent one is answered
	CHECK(std::chrono::steady_clock::now() - start >= 250ms);
	CHECK(f.client().stats().reconnects >= 1);
	CHECK(f.client().stats().resent >= 1);
	hang->release();
}

TEST_CASE("a reconnect to a server with smaller limits than promised is not used", "[reconnect]")
{
	Fixture f(r3test::memoryBackend(kSize), [](auto &o) {
		o.deadline = 1500ms;
		o.backoffMax = 100ms;
	});
	std::vector<std::byte> buf(4096);
	REQUIRE(f.client().read(buf, 0));
	f.server().stop();

	// Calls were already split for the old payload limit: the smaller server must be refused.
	RpcServerOptions smaller;
	smaller.maxPayload = 64 * 1024;
	f.restart(smaller);
	auto r = f.client().read(buf, 0);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK_THAT(f.client().stats().lastError, Catch::Contains("now takes requests of at most 65536 bytes"));
	CHECK(f.server().stats().activeConnections == 0);
}
