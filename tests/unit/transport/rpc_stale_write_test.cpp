// Review: a write re-sent after a request timeout, while the first copy still runs in the
// server's backend, lands after a newer acknowledged write to the same offset.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <thread>

#include <sys/resource.h>

#include "transport/messages.hpp"

#include "chunks/forwarding_read_writer_at.hpp"
#include "rpc_test_support.hpp"

using namespace r3d;
using namespace r3d::transport;
using namespace std::chrono_literals;
using r3test::TestServer;

namespace {

constexpr uint64_t kSize = 1 << 20;

// The first write blocks until released (a backend stalled past the client's timeout).
class HangFirstWrite final : public chunks::ForwardingReadWriterAt
{
public:
	using ForwardingReadWriterAt::ForwardingReadWriterAt;
	bool isFast() const override { return false; }
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		if (!hung_.exchange(true)) {
			std::unique_lock lock(mutex_);
			cv_.wait(lock, [&] { return released_; });
		}
		auto r = next_->writeAt(buf, offset);
		writes_++;
		return r;
	}
	void release()
	{
		std::lock_guard lock(mutex_);
		released_ = true;
		cv_.notify_all();
	}
	std::atomic<int> writes_{ 0 };

private:
	std::atomic<bool> hung_{ false };
	std::mutex mutex_;
	std::condition_variable cv_;
	bool released_ = false;
};

} // namespace

TEST_CASE("a stale re-sent write does not overwrite a newer acknowledged one", "[reconnect][review]")
{
	auto gate = std::make_shared<HangFirstWrite>(r3test::memoryBackend(kSize));
	auto t = TestServer::start(gate);
	auto o = t.clientOptions();
	o.requestTimeout = 300ms;
	auto c = RpcClient::connect(o);
	REQUIRE(c);
	auto &client = **c;

	auto a = r3test::pattern(4096, 1);
	auto b = r3test::pattern(4096, 2);
	REQUIRE(client.write(a, 0)); // first copy hangs, re-sent copy acknowledged
	CHECK(client.stats().resent >= 1);
	REQUIRE(client.write(b, 0)); // newer write, acknowledged
	gate->release();             // the stale first copy of A finishes now
	while (gate->writes_ < 3)
		std::this_thread::sleep_for(1ms);

	std::vector<std::byte> back(4096);
	REQUIRE(client.read(back, 0));
	CHECK((back == b)); // fails: the device holds A, B was lost
	CHECK_FALSE((back == a));
}

namespace {

long rssKiB()
{
	std::ifstream in("/proc/self/status");
	std::string line;
	while (std::getline(in, line))
		if (line.rfind("VmRSS:", 0) == 0)
			return std::stol(line.substr(6));
	return 0;
}

} // namespace

TEST_CASE("a client that never reads its replies pins memory per connection, forever", "[caps][review]")
{
	auto t = TestServer::start(r3test::memoryBackend(64 << 20));
	constexpr int kConnections = 3;
	constexpr uint32_t kRead = 32 << 20;
	long before = rssKiB();
	std::vector<r3d::UniqueFd> fds;
	for (int n = 0; n < kConnections; ++n) {
		auto fd = r3test::rawConnect(t.port());
		std::string hello;
		appendFrame(hello, Hello{ kProtocolVersion, "disk", "", "slow" });
		r3test::sendAll(fd.get(), hello.data(), hello.size());
		std::string frames;
		for (uint64_t id = 1; id <= 8; ++id)
			appendFrame(frames, Request{ id, Op::Read, 0, kRead, {} }, 0);
		r3test::sendAll(fd.get(), frames.data(), frames.size());
		fds.push_back(std::move(fd)); // and never read a byte
	}
	std::this_thread::sleep_for(3s);
	long grown = rssKiB() - before;
	INFO("server grew by " << grown / 1024 << " MiB for " << kConnections << " silent connections");
	CHECK(t.server->stats().activeConnections == kConnections); // nobody is dropped
	// Each connection holds >= maxInFlightBytes (128 MiB); 512 connections would pin 64+ GiB.
	CHECK(grown < 256 * 1024); // fails: ~128-160 MiB per connection, no server-wide budget
}
