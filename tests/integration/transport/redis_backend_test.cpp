// The Redis backend against a real redis-server on loopback. A SET it gave up on (its
// connection timed out while the bytes were still travelling, held by a proxy) must not
// land after a newer acknowledged write to the same chunk: the backend kills the lost
// connection's Redis client before it sends anything again. And FAST_ZERO, which chunk
// stores advertise, works.

#include <chrono>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <r3d/backend_factory.hpp>

#include "net_support.hpp"
#include "stages/pipeline.hpp"
#include "tcp_proxy.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

const r3test::Prerequisite redisServer = r3test::Prerequisite::program("redis-server");

// redis-server on a free loopback port, without persistence; killed on destruction.
class RedisServer
{
public:
	RedisServer()
	{
		port_ = r3test::freePort();
		std::string port = std::to_string(port_);
		pid_ = ::fork();
		REQUIRE(pid_ >= 0);
		if (pid_ == 0) {
			int null = ::open("/dev/null", O_WRONLY);
			::dup2(null, STDOUT_FILENO);
			::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
				 "--appendonly", "no", "--dir", dir_.path().c_str(), "--loglevel", "warning",
				 static_cast<char *>(nullptr));
			::_exit(127);
		}
		for (int i = 0; i < 500 && !r3test::tryConnect(port_); ++i)
			std::this_thread::sleep_for(10ms);
		REQUIRE(r3test::tryConnect(port_));
	}
	~RedisServer()
	{
		::kill(pid_, SIGKILL);
		::waitpid(pid_, nullptr, 0);
	}
	uint16_t port() const { return port_; }

private:
	r3test::TempDir dir_;
	uint16_t port_ = 0;
	pid_t pid_ = -1;
};

} // namespace

TEST_CASE("a SET held in the network after its connection timed out does not land after a newer write",
	  "[redis][order]")
{
	RedisServer redis;
	r3test::TcpProxy proxy(std::to_string(redis.port()));
	// One connection, so the open's connection is the one that carries the first write.
	auto uri = "redis://127.0.0.1:" + proxy.port() + "/fence?size=1M&chunk=4K&connections=1&timeout=300ms&deadline=20s";
	auto opened = r3d::openBackend(uri);
	REQUIRE(opened);
	auto &rw = **opened;
	proxy.waitConnections(1);

	auto a = r3test::pattern(4096, 1);
	auto b = r3test::pattern(4096, 2);
	proxy.hold(0); // the first SET of A stays in the network
	REQUIRE(rw.writeAt(a, 0)); // times out after 300 ms, goes again on a new connection
	CHECK(proxy.connections() >= 2);
	REQUIRE(rw.writeAt(b, 0));
	CHECK(proxy.release(0) > 0); // the late copy of A arrives now

	std::this_thread::sleep_for(200ms); // time for Redis to run it, if it still could
	std::vector<std::byte> back(4096);
	REQUIRE(rw.readAt(back, 0));
	CHECK((back == b));
}

TEST_CASE("fast zeroing of whole chunks deletes their keys; partial chunks are zeroed in place", "[redis][zero]")
{
	RedisServer redis;
	// Partial chunks need the Arbitrary stage the pipeline puts in front of a chunk store.
	auto opened = r3d::stages::openPipeline("redis://127.0.0.1:" + std::to_string(redis.port()) + "/zero?size=64K&chunk=4K", {});
	REQUIRE(opened);
	auto &rw = *opened->top;
	REQUIRE(rw.canFastZero());
	auto data = r3test::pattern(16384, 3);
	REQUIRE(rw.writeAt(data, 0));

	REQUIRE(rw.writeZeroesFast(0, 8192)); // two whole chunks
	REQUIRE(rw.writeZeroesFast(9000, 100)); // inside the third
	std::vector<std::byte> back(16384);
	REQUIRE(rw.readAt(back, 0));
	auto expected = data;
	std::fill(expected.begin(), expected.begin() + 8192, std::byte{ 0 });
	std::fill(expected.begin() + 9000, expected.begin() + 9100, std::byte{ 0 });
	CHECK((back == expected));
}
