// Writes must land in the order they were acknowledged, whatever the link does: a copy of
// a write that is re-sent, given up on or stuck in a dead connection must never land after
// a newer acknowledged write to the same range (review of the transport, finding 1).

#include <atomic>
#include <chrono>
#include <thread>

#include "fault_read_writer_at.hpp"
#include "rpc_test_support.hpp"
#include "transport/block/messages.hpp"

using namespace r3d;
using namespace r3d::transport;
using namespace std::chrono_literals;
using r3test::FaultReadWriterAt;
using r3test::Fixture;
using r3test::TestServer;

namespace {

constexpr uint64_t kSize = 1 << 20;

// The first write blocks until released: a backend stalled past the client's patience.
std::shared_ptr<FaultReadWriterAt> hangFirstWrite()
{
	auto gate = std::make_shared<FaultReadWriterAt>(r3test::memoryBackend(kSize));
	gate->hangOnce(FaultReadWriterAt::kWrites);
	return gate;
}

std::vector<std::byte> readBack(RpcClient &client, uint64_t offset, size_t n)
{
	std::vector<std::byte> back(n);
	REQUIRE(client.read(back, offset));
	return back;
}

std::vector<std::byte> rawRead(int fd, uint64_t id, uint64_t offset, size_t n)
{
	r3test::rawRequest(fd, Request{ id, Op::Read, offset, n, {} });
	Response response;
	std::vector<std::byte> payload;
	REQUIRE(r3test::rawResponse(fd, response, payload));
	REQUIRE(response.id == id);
	REQUIRE(response.error == 0);
	return payload;
}

Hello slotHello(const std::string &session, uint64_t incarnation)
{
	return Hello{ kProtocolVersion, "disk", "", "raw", session, 0, incarnation };
}

} // namespace

TEST_CASE("a write re-sent after a request timeout does not let its first copy land later", "[reconnect][order]")
{
	auto connections = GENERATE(1u, 2u);
	auto gate = hangFirstWrite();
	Fixture f(gate, [&](auto &o) {
		o.connections = connections;
		o.requestTimeout = 300ms;
	});
	auto &client = f.client();

	auto a = r3test::pattern(4096, 1);
	auto b = r3test::pattern(4096, 2);
	// The first copy of A hangs in the backend; the client gives up on its connection
	// after 300 ms; the hung copy finishes at 1 s.
	auto releaser = gate->releaseAfter(1000ms);
	REQUIRE(client.write(a, 0));
	CHECK(client.stats().resent >= 1);
	REQUIRE(client.write(b, 0));
	releaser.join();
	gate->waitCompleted(FaultReadWriterAt::kWrites, 2);
	std::this_thread::sleep_for(100ms); // time for any straggler copy of A to land

	auto back = readBack(client, 0, 4096);
	CHECK((back == b));
	CHECK_FALSE((back == a));
	CHECK(f.server().stats().fenced >= 1);
}

TEST_CASE("a write that failed at its deadline does not land after a later write", "[reconnect][order]")
{
	auto connections = GENERATE(1u, 2u);
	auto gate = hangFirstWrite();
	Fixture f(gate, [&](auto &o) {
		o.connections = connections;
		o.deadline = 1000ms; // reached before the request timeout
	});
	auto &client = f.client();

	auto a = r3test::pattern(4096, 1);
	auto b = r3test::pattern(4096, 2);
	auto releaser = gate->releaseAfter(1500ms);
	auto first = client.write(a, 0);
	REQUIRE_FALSE(first);
	CHECK(first.error().value() == EIO);
	// A is still running in the server; B must not be answered before it is done.
	REQUIRE(client.write(b, 0));
	releaser.join();
	gate->waitCompleted(FaultReadWriterAt::kWrites, 2);
	std::this_thread::sleep_for(100ms);

	auto back = readBack(client, 0, 4096);
	CHECK((back == b));
	CHECK(client.stats().expired >= 1);
}

TEST_CASE("what a replaced connection has not read yet is never executed", "[reconnect][order][fence]")
{
	RpcServerOptions so;
	so.maxInFlight = 1; // the server reads one request at a time: the rest waits in the socket
	auto gate = hangFirstWrite();
	auto t = TestServer::start(gate, so);
	const std::string session(kSessionIdSize, 's');
	auto a = r3test::pattern(4096, 1);
	auto b = r3test::pattern(4096, 2);

	auto old = r3test::rawConnect(t.port());
	REQUIRE(r3test::rawHello(old.get(), slotHello(session, 1)).error == 0);
	for (uint64_t id = 1; id <= 4; ++id)
		r3test::rawRequest(old.get(), Request{ id, Op::Write, 0, a.size(), {} }, a);
	gate->waitHeld(); // the first copy of A runs; three more wait unread

	// The client reconnects that slot; the hung copy of A finishes in 500 ms.
	auto fresh = r3test::rawConnect(t.port());
	auto releaser = gate->releaseAfter(500ms);
	auto reply = r3test::rawHello(fresh.get(), slotHello(session, 2));
	REQUIRE(reply.error == 0);
	CHECK(reply.fenced);
	CHECK(gate->completed(FaultReadWriterAt::kWrites) == 1); // the hello was answered only after the running copy was done
	r3test::rawRequest(fresh.get(), Request{ 1, Op::Write, 0, b.size(), {} }, b);
	Response response;
	std::vector<std::byte> payload;
	REQUIRE(r3test::rawResponse(fresh.get(), response, payload));
	CHECK(response.error == 0);
	releaser.join();
	std::this_thread::sleep_for(300ms); // time for the unread copies of A, were they run

	CHECK(rawRead(fresh.get(), 2, 0, 4096) == b);
	CHECK(gate->completed(FaultReadWriterAt::kWrites) == 2);
	std::string got;
	CHECK(r3test::readUntilClosed(old.get(), got)); // the old connection was closed
	CHECK(t.server->stats().fenced == 1);
}

TEST_CASE("bytes reaching a replaced connection late are not executed", "[reconnect][order][fence]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	const std::string session(kSessionIdSize, 's');
	auto a = r3test::pattern(4096, 1);

	auto old = r3test::rawConnect(t.port());
	REQUIRE(r3test::rawHello(old.get(), slotHello(session, 1)).error == 0);
	auto fresh = r3test::rawConnect(t.port());
	REQUIRE(r3test::rawHello(fresh.get(), slotHello(session, 2)).error == 0);
	// A request retransmitted on the old connection arrives after the new hello.
	std::string frame;
	appendFrame(frame, Request{ 1, Op::Write, 0, a.size(), {} }, static_cast<uint32_t>(a.size()));
	frame.append(reinterpret_cast<const char *>(a.data()), a.size());
	::send(old.get(), frame.data(), frame.size(), MSG_NOSIGNAL);
	std::this_thread::sleep_for(200ms);

	CHECK(r3test::allZero(rawRead(fresh.get(), 1, 0, 4096)));
	CHECK(t.server->stats().requests == 1); // only the read
}

TEST_CASE("a hello older than the slot's newest connection is refused", "[reconnect][fence]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	const std::string session(kSessionIdSize, 's');
	auto fresh = r3test::rawConnect(t.port());
	REQUIRE(r3test::rawHello(fresh.get(), slotHello(session, 5)).error == 0);
	auto late = r3test::rawConnect(t.port());
	auto reply = r3test::rawHello(late.get(), slotHello(session, 4));
	CHECK(reply.error == ESTALE);
	// Another slot of the same client, and another client, are not affected.
	auto sibling = r3test::rawConnect(t.port());
	auto hello = slotHello(session, 1);
	hello.slot = 1;
	CHECK(r3test::rawHello(sibling.get(), hello).error == 0);
	auto other = r3test::rawConnect(t.port());
	CHECK(r3test::rawHello(other.get(), slotHello(std::string(kSessionIdSize, 'o'), 1)).error == 0);
	CHECK(r3test::allZero(rawRead(fresh.get(), 1, 0, 512)));
	CHECK(t.server->stats().fenced == 0);
}
