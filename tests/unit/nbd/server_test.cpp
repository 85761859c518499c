#include "nbd/server.hpp"

#include <future>
#include <thread>

#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "nbd/protocol.hpp"
#include "nbd/socket_reader.hpp"
#include "nbd/wire.hpp"
#include "fault_read_writer_at.hpp"
#include "raw_nbd_client.hpp"
#include "test_support.hpp"

using namespace r3d;
using namespace r3d::nbd;

namespace {

std::shared_ptr<ReadWriterAt> memory(uint64_t size)
{
	return std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(size).value()));
}

using RawClient = r3test::RawNbdClient;

std::pair<UniqueFd, UniqueFd> socketPair()
{
	int fds[2];
	REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
	return { UniqueFd(fds[0]), UniqueFd(fds[1]) };
}

void rawRequest(int fd, Cmd cmd, uint64_t handle, uint64_t offset, uint32_t length)
{
	std::vector<std::byte> msg;
	wire::Writer(msg).u32(kRequestMagic).u16(0).u16(static_cast<uint16_t>(cmd)).u64(handle).u64(offset).u32(length);
	REQUIRE(sendAll(fd, msg));
}

// Liveness bound only: these waits are for "eventually", not a measure of speed.
bool readableWithin(int fd, std::chrono::milliseconds t)
{
	pollfd p{ fd, POLLIN, 0 };
	return ::poll(&p, 1, static_cast<int>(t.count())) == 1;
}

// Serves one connection on its own thread: the whole protocol, or transmission only.
std::future<bool> serveAsync(Server &server, UniqueFd fd, bool handshake = false)
{
	return std::async(std::launch::async, [&server, handshake, fd = std::move(fd)]() mutable {
		return (handshake ? server.serve(std::move(fd)) : server.serveTransmission(std::move(fd), ""))
			.has_value();
	});
}

} // namespace

TEST_CASE("a server speaks the whole protocol over a socketpair", "[nbd]")
{
	Server server;
	server.addExport({ "", "", memory(1 << 20), false });
	auto [mine, theirs] = socketPair();
	auto served = serveAsync(server, std::move(theirs), true);
	RawClient client(std::move(mine));
	CHECK(client.handshake() == 1 << 20);

	auto data = r3test::pattern(4096, 1);
	client.request(Cmd::Write, 7, 8192, 4096, data);
	CHECK(client.reply() == std::make_pair(0u, uint64_t{ 7 }));
	client.request(Cmd::Read, 8, 8192, 4096);
	CHECK(client.reply() == std::make_pair(0u, uint64_t{ 8 }));
	CHECK(client.take(4096) == data);
	client.request(Cmd::Read, 9, (1 << 20) - 10, 20);
	CHECK(client.reply() == std::make_pair(kEinval, uint64_t{ 9 }));
	client.request(Cmd::Flush, 10, 0, 0);
	CHECK(client.reply() == std::make_pair(0u, uint64_t{ 10 }));
	client.request(Cmd::Disc, 11, 0, 0);
	CHECK(served.get());
	auto stats = server.stats();
	CHECK(stats.writes == 1);
	CHECK(stats.reads == 1);
	CHECK(stats.flushes == 1);
	CHECK(stats.errors == 1);
	CHECK(stats.activeConnections == 0);
}

TEST_CASE("replies of a blocking backend come back out of order", "[nbd]")
{
	// It may block (so the server uses its worker pool) and holds reads at offset 0 until
	// released, to force replies out of order.
	auto held = std::make_shared<r3test::FaultReadWriterAt>(memory(1 << 20));
	held->hold(r3test::FaultReadWriterAt::kReads, 0);
	Server server;
	server.addExport({ "", "", held, false });
	auto [mine, theirs] = socketPair();
	auto served = serveAsync(server, std::move(theirs), true);
	RawClient client(std::move(mine));
	client.handshake();
	client.request(Cmd::Read, 1, 0, 512);    // held in the backend
	client.request(Cmd::Read, 2, 4096, 512); // free to finish first
	CHECK(client.reply().second == 2);
	client.take(512);
	held->release();
	CHECK(client.reply().second == 1);
	client.take(512);
	client.request(Cmd::Disc, 3, 0, 0);
	CHECK(served.get());
}

TEST_CASE("shutdown ends idle connections and refuses new ones", "[nbd]")
{
	Server server;
	server.addExport({ "", "", memory(1 << 20), false });
	auto [mine, theirs] = socketPair();
	auto served = serveAsync(server, std::move(theirs), true);
	RawClient client(std::move(mine));
	client.handshake();
	while (server.stats().activeConnections == 0)
		std::this_thread::yield();
	server.shutdown();
	CHECK(served.get());
	auto [late, lateTheirs] = socketPair();
	CHECK(server.serve(std::move(lateTheirs)).error().value() == ESHUTDOWN);
}

TEST_CASE("a client that stops reading its replies does not starve other connections", "[nbd]")
{
	using namespace std::chrono_literals;
	ServerOptions o;
	o.workerThreads = 4;
	Server server(o);
	// Any backend that is not memcpy-fast (file, dir, remote) is served by the worker pool.
	auto slow = std::make_shared<r3test::FaultReadWriterAt>(memory(64 << 20));
	slow->blocking();
	server.addExport({ "", "", slow, false });
	auto [a, aServer] = socketPair();
	auto servedA = serveAsync(server, std::move(aServer));
	// A pipelines 32 MiB of reads and never takes a reply byte.
	for (uint64_t i = 0; i < 32; ++i)
		rawRequest(a.get(), Cmd::Read, i, i << 20, 1 << 20);
	while (server.stats().reads < 32)
		std::this_thread::sleep_for(10ms);

	auto [b, bServer] = socketPair();
	auto servedB = serveAsync(server, std::move(bServer));
	rawRequest(b.get(), Cmd::Read, 100, 0, 4096);
	CHECK(readableWithin(b.get(), 10s));

	// And shutdown() ends A although its replies can never be delivered.
	server.shutdown();
	CHECK(servedA.wait_for(20s) == std::future_status::ready);
	::shutdown(a.get(), SHUT_RDWR);
	b.reset();
	servedA.wait();
	servedB.wait();
}

TEST_CASE("shutdown() ends an inline connection whose client stopped reading", "[nbd]")
{
	using namespace std::chrono_literals;
	Server server;
	server.addExport({ "", "", memory(64 << 20), false });
	auto [a, aServer] = socketPair();
	auto served = serveAsync(server, std::move(aServer));
	for (uint64_t i = 0; i < 16; ++i)
		rawRequest(a.get(), Cmd::Read, i, i << 20, 1 << 20);
	while (server.stats().reads < 1) // the first reply already fills the socket
		std::this_thread::sleep_for(10ms);
	server.shutdown();
	CHECK(served.wait_for(20s) == std::future_status::ready);
	::shutdown(a.get(), SHUT_RDWR);
	served.wait();
}
