// The client across lost connections: resend after a server restart, EIO after the
// deadline, a hung server dropped after the request timeout.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "stages/forwarding_read_writer_at.hpp"
#include "rpc_test_support.hpp"

using namespace r3d;
using namespace r3d::transport;
using namespace std::chrono_literals;
using r3test::TestServer;
using r3test::connect;

namespace {

constexpr uint64_t kSize = 16 << 20;

// Slows every write down so requests are still in flight when the server goes away.
class SlowReadWriterAt final : public stages::ForwardingReadWriterAt
{
public:
	using ForwardingReadWriterAt::ForwardingReadWriterAt;
	bool isFast() const override { return false; } // it blocks: keep it off the network thread
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		std::this_thread::sleep_for(2ms);
		return next_->writeAt(buf, offset);
	}
};

// The first read blocks until released: a server that stops answering.
class HangOnceReadWriterAt final : public stages::ForwardingReadWriterAt
{
public:
	using ForwardingReadWriterAt::ForwardingReadWriterAt;
	bool isFast() const override { return false; } // it blocks: keep it off the network thread
	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override
	{
		if (!hung_.exchange(true)) {
			std::unique_lock lock(mutex_);
			cv_.wait(lock, [&] { return released_; });
		}
		return next_->readAt(buf, offset);
	}
	void release()
	{
		std::lock_guard lock(mutex_);
		released_ = true;
		cv_.notify_all();
	}

private:
	std::atomic<bool> hung_{ false };
	std::mutex mutex_;
	std::condition_variable cv_;
	bool released_ = false;
};

} // namespace

TEST_CASE("a server restart stalls the writers, then everything lands", "[reconnect]")
{
	auto backend = std::make_shared<SlowReadWriterAt>(r3test::memoryBackend(kSize));
	auto t = TestServer::start(backend);
	std::string address = t.address;
	auto o = t.clientOptions();
	o.connections = 2;
	o.backoffMax = 200ms;
	auto client = connect(o);

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
				if (!client->write(data, i * kSlice + off))
					failures++;
				written += kBlock;
			}
		});
	}
	while (written < kSize / 4)
		std::this_thread::sleep_for(1ms);
	t.server->stop(); // requests in flight lose their replies
	uint64_t atCut = written;
	std::this_thread::sleep_for(1s);
	CHECK(written - atCut < kSize / 8); // stalled, give or take the replies already on their way
	auto again = TestServer::start(backend, {}, 0, address);
	for (auto &w : writers)
		w.join();
	CHECK(failures == 0);
	CHECK(client->stats().reconnects >= 1);

	std::vector<std::byte> back(kBlock);
	for (int i = 0; i < kThreads; ++i)
		for (uint64_t off = 0; off < kSlice; off += kBlock) {
			REQUIRE(client->read(back, i * kSlice + off));
			REQUIRE(back == r3test::pattern(kBlock, static_cast<uint32_t>(i * kSlice + off)));
		}
}

TEST_CASE("past the deadline callers get EIO; the client recovers when the server returns", "[reconnect]")
{
	auto backend = r3test::memoryBackend(kSize);
	auto t = TestServer::start(backend);
	std::string address = t.address;
	auto o = t.clientOptions();
	o.deadline = 500ms;
	o.backoffMax = 100ms;
	auto client = connect(o);
	t.server->stop();

	std::vector<std::byte> buf(4096);
	auto start = std::chrono::steady_clock::now();
	auto r = client->read(buf, 0);
	auto took = std::chrono::steady_clock::now() - start;
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK(took >= 400ms);
	CHECK(took < 5s);
	CHECK(client->stats().expired >= 1);

	auto again = TestServer::start(backend, {}, 0, address);
	bool recovered = false;
	for (int i = 0; i < 50 && !recovered; ++i)
		recovered = bool(client->read(buf, 0));
	CHECK(recovered);
}

TEST_CASE("a connection that stops answering is dropped and its requests re-sent", "[reconnect]")
{
	auto hang = std::make_shared<HangOnceReadWriterAt>(r3test::memoryBackend(kSize));
	auto t = TestServer::start(hang);
	auto o = t.clientOptions();
	o.requestTimeout = 300ms;
	auto client = connect(o);
	std::vector<std::byte> buf(4096);
	auto start = std::chrono::steady_clock::now();
	REQUIRE(client->read(buf, 0)); // the first attempt hangs, the re-sent one is answered
	CHECK(std::chrono::steady_clock::now() - start >= 250ms);
	CHECK(client->stats().reconnects >= 1);
	CHECK(client->stats().resent >= 1);
	hang->release();
}

TEST_CASE("a reconnect to a server with smaller limits than promised is not used", "[reconnect]")
{
	auto backend = r3test::memoryBackend(kSize);
	auto t = TestServer::start(backend);
	std::string address = t.address;
	auto o = t.clientOptions();
	o.deadline = 1500ms;
	o.backoffMax = 100ms;
	auto client = connect(o);
	std::vector<std::byte> buf(4096);
	REQUIRE(client->read(buf, 0));
	t.server->stop();

	// Calls were already split for the old payload limit: the smaller server must be refused.
	RpcServerOptions smaller;
	smaller.maxPayload = 64 * 1024;
	auto again = TestServer::start(backend, smaller, 0, address);
	auto r = client->read(buf, 0);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK_THAT(client->stats().lastError, Catch::Contains("now takes requests of at most 65536 bytes"));
	CHECK(again.server->stats().activeConnections == 0);
}
