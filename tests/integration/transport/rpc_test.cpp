// Round trips through an in-process RpcServer and RpcClient on loopback: data, errors,
// concurrency, framing abuse and tokens. TLS is in rpc_tls_test.cpp (it needs openssl).

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>

#include "fault_read_writer_at.hpp"
#include "rpc_test_support.hpp"
#include "stages/pipeline.hpp"
#include "transport/block/messages.hpp"

using namespace r3d;
using namespace r3d::transport;
using r3test::Fixture;
using r3test::TestServer;
using r3test::connect;
using r3test::connectError;

namespace {

constexpr uint64_t kSize = 8 << 20;

long maxRssKiB()
{
	rusage ru{};
	::getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

// Speaks the hello on a raw socket; the server must accept it.
void rawHello(int fd)
{
	REQUIRE(r3test::rawHello(fd, Hello{ kProtocolVersion, "disk", "", "raw" }).error == 0);
}

} // namespace

TEST_CASE("every operation round-trips", "[rpc]")
{
	Fixture f(r3test::memoryBackend(kSize));
	CHECK(f.client().info().size == kSize);
	CHECK(f.client().remoteSize().value() == kSize);

	auto data = r3test::pattern(100000, 1);
	REQUIRE(f.client().write(data, 12345));
	std::vector<std::byte> back(data.size());
	REQUIRE(f.client().read(back, 12345));
	CHECK(back == data);
	REQUIRE(f.client().sync());

	REQUIRE(f.client().writeZeroes(12345, 1000));
	REQUIRE(f.client().trim(20000, 5000));
	REQUIRE(f.client().read(back, 12345));
	CHECK(r3test::allZero(std::vector<std::byte>(back.begin(), back.begin() + 1000)));
	CHECK(std::equal(back.begin() + 1000, back.begin() + (20000 - 12345), data.begin() + 1000));
	CHECK(r3test::allZero(std::vector<std::byte>(back.begin() + (20000 - 12345), back.begin() + (25000 - 12345))));

	std::vector<IoRange> ranges{ { 20000 + 5000, 100 }, { 12345 + 2000, 50 } };
	std::vector<std::byte> two(150);
	REQUIRE(f.client().readRanges(ranges, two));
	CHECK(std::equal(two.begin(), two.begin() + 100, data.begin() + (25000 - 12345)));
	CHECK(std::equal(two.begin() + 100, two.end(), data.begin() + 2000));
	CHECK(f.server().stats().requests >= 8);
}

TEST_CASE("the server's errno reaches the caller, the connection stays up", "[rpc]")
{
	Fixture f(r3test::memoryBackend(kSize));
	std::vector<std::byte> buf(4096);
	auto read = f.client().read(buf, kSize - 100);
	REQUIRE_FALSE(read);
	CHECK(read.error().value() == EINVAL);
	auto write = f.client().write(buf, kSize - 100);
	REQUIRE_FALSE(write);
	CHECK(write.error().value() == ENOSPC);
	auto trim = f.client().trim(kSize, 1);
	REQUIRE_FALSE(trim);
	CHECK(trim.error().value() == ENOSPC);
	std::vector<std::byte> wrong(10);
	std::vector<IoRange> ranges{ { 0, 4 } };
	CHECK(f.client().readRanges(ranges, wrong).error().value() == EINVAL); // sizes disagree: refused locally
	CHECK(f.client().read(buf, 0));
	CHECK(f.server().stats().errors == 3);
	CHECK(f.client().stats().reconnects == 0);
}

TEST_CASE("calls larger than the payload limit are split and reassembled", "[rpc]")
{
	Fixture f(r3test::memoryBackend(kSize), [](auto &o) { o.maxPayload = 64 * 1024; });
	auto data = r3test::pattern(3 * 1024 * 1024 + 17, 2);
	REQUIRE(f.client().write(data, 5));
	std::vector<std::byte> back(data.size());
	REQUIRE(f.client().read(back, 5));
	CHECK(back == data);
	CHECK(f.server().stats().requests >= 2 * (data.size() / (64 * 1024)));
}

TEST_CASE("many threads share the connections with many requests in flight", "[rpc]")
{
	Fixture f(r3test::memoryBackend(kSize), [](auto &o) { o.connections = 3; });
	constexpr int kThreads = 16;
	constexpr uint64_t kSlice = kSize / kThreads;
	std::atomic<int> failures{ 0 };
	std::vector<std::thread> threads;
	for (int i = 0; i < kThreads; ++i) {
		threads.emplace_back([&, i] {
			for (uint64_t off = 0; off < kSlice; off += 4096) {
				auto data = r3test::pattern(4096, static_cast<uint32_t>(i * 100000 + off));
				std::vector<std::byte> back(4096);
				if (!f.client().write(data, i * kSlice + off) || !f.client().read(back, i * kSlice + off) ||
				    back != data)
					failures++;
			}
		});
	}
	for (auto &th : threads)
		th.join();
	CHECK(failures == 0);
}

TEST_CASE("replies come back in completion order, not request order", "[rpc]")
{
	// Reads of offset 0 are held until released, so later requests can overtake them.
	auto gate = std::make_shared<r3test::FaultReadWriterAt>(r3test::memoryBackend(kSize));
	gate->hold(r3test::FaultReadWriterAt::kReads, 0);
	Fixture f(gate); // one connection
	std::vector<std::byte> slowBuf(4096);
	std::thread slow([&] { CHECK(f.client().read(slowBuf, 0)); });
	gate->waitHeld();
	// The read of offset 0 is stuck in the backend; later requests on the same
	// connection must still be answered.
	std::vector<std::byte> buf(4096);
	for (int i = 1; i <= 20; ++i)
		REQUIRE(f.client().read(buf, static_cast<uint64_t>(i) * 4096));
	gate->release();
	slow.join();
}

TEST_CASE("chunked exports: the guard refuses stray ranges, read-ranges batches chunks", "[rpc][chunked]")
{
	Fixture f(r3test::memoryBackend(kSize), {}, {}, 65536);
	CHECK(f.client().info().chunkSize == 65536);
	std::vector<std::byte> chunk(65536);
	CHECK(f.client().read(chunk, 65536));
	CHECK(f.client().read(chunk, 100).error().value() == EINVAL);
	std::vector<std::byte> small(100);
	CHECK(f.client().read(small, 0).error().value() == EINVAL);

	auto data = r3test::pattern(4 * 65536, 3);
	for (int i = 0; i < 4; ++i)
		REQUIRE(f.client().write(std::span(data).subspan(i * 65536, 65536), (10 + i) * 65536));
	std::vector<IoRange> ranges;
	for (int i = 0; i < 4; ++i)
		ranges.push_back({ static_cast<uint64_t>(10 + i) * 65536, 65536 });
	uint64_t before = f.server().stats().requests;
	std::vector<std::byte> back(data.size());
	REQUIRE(f.client().readRanges(ranges, back));
	CHECK(back == data);
	CHECK(f.server().stats().requests == before + 1);
	CHECK(f.client().trim(65536, 3 * 65536));
	CHECK(f.client().trim(65536, 100).error().value() == EINVAL);

	// The raw backend takes whole chunks (a run of them in one READ_RANGES trip); through
	// the pipeline the export works at any offset.
	auto raw = openBackend("r3://127.0.0.1:" + f.port() + "/disk");
	REQUIRE(raw);
	CHECK((*raw)->preferredChunk() == 65536);
	std::vector<std::byte> run(data.size());
	before = f.server().stats().requests;
	REQUIRE((*raw)->readAt(run, 10 * 65536));
	CHECK(run == data);
	CHECK(f.server().stats().requests == before + 1);
	CHECK((*raw)->readAt(std::span(run).first(1000), 10 * 65536).error().value() == EINVAL);
	auto any = r3d::stages::openPipeline("r3://127.0.0.1:" + f.port() + "/disk", {});
	REQUIRE(any);
	CHECK(any->chunk == 65536);
	auto piece = r3test::pattern(1000, 4);
	REQUIRE(any->top->writeAt(piece, 65536 * 20 + 7));
	std::vector<std::byte> got(1000);
	REQUIRE(any->top->readAt(got, 65536 * 20 + 7));
	CHECK(got == piece);
}

TEST_CASE("an oversize frame closes that connection before any allocation", "[rpc][caps]")
{
	Fixture f(r3test::memoryBackend(kSize));
	long rssBefore = maxRssKiB();

	auto fd = r3test::rawConnect(f.port());
	rawHello(fd.get());
	std::array<std::byte, kFrameHeaderSize> header;
	encodeFrameHeader(FrameHeader{ FrameKind::Request, 0xffffffff, 0xffffffff }, header);
	r3test::sendAll(fd.get(), header.data(), header.size());
	std::string got;
	CHECK(r3test::readUntilClosed(fd.get(), got));
	CHECK(got.empty());

	// A declared 32 MiB + 1 payload is refused the same way.
	auto fd2 = r3test::rawConnect(f.port());
	rawHello(fd2.get());
	Request w{ 1, Op::Write, 0, 32 * 1024 * 1024 + 1, {} };
	std::string frame;
	appendFrame(frame, w, 32 * 1024 * 1024 + 1);
	r3test::sendAll(fd2.get(), frame.data(), frame.size());
	CHECK(r3test::readUntilClosed(fd2.get(), got));

	CHECK(maxRssKiB() - rssBefore < 16 * 1024);
	std::vector<std::byte> buf(4096);
	CHECK(f.client().read(buf, 0)); // everyone else is still served
}

TEST_CASE("malformed input before and after the hello is refused", "[rpc][caps]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	std::string got;

	auto garbage = r3test::rawConnect(t.port());
	const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	r3test::sendAll(garbage.get(), http, sizeof(http) - 1);
	CHECK(r3test::readUntilClosed(garbage.get(), got));

	auto junkMeta = r3test::rawConnect(t.port());
	rawHello(junkMeta.get());
	std::array<std::byte, kFrameHeaderSize + 4> frame{};
	encodeFrameHeader(FrameHeader{ FrameKind::Request, 4, 0 }, std::span(frame).first<kFrameHeaderSize>());
	std::memset(frame.data() + kFrameHeaderSize, 0xff, 4);
	r3test::sendAll(junkMeta.get(), frame.data(), frame.size());
	CHECK(r3test::readUntilClosed(junkMeta.get(), got));

	CHECK(t.server->stats().refused >= 1);
	auto client = connect(t.clientOptions());
	CHECK(client->remoteSize().value() == kSize);
}

TEST_CASE("a client that never says hello is dropped after the handshake timeout", "[rpc][caps]")
{
	RpcServerOptions o;
	o.handshakeTimeout = std::chrono::milliseconds(300);
	auto t = TestServer::start(r3test::memoryBackend(kSize), o);
	auto fd = r3test::rawConnect(t.port());
	auto start = std::chrono::steady_clock::now();
	std::string got;
	CHECK(r3test::readUntilClosed(fd.get(), got));
	CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("unknown exports are refused naming the ones there are", "[rpc]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto o = t.clientOptions();
	o.exportName = "nope";
	auto message = connectError(o);
	CHECK_THAT(message, Catch::Contains("no export named 'nope'"));
	CHECK_THAT(message, Catch::Contains("'disk'"));
	o.port = "1"; // nothing listens there
	CHECK_THAT(connectError(o), Catch::Contains("Connection refused"));
}

TEST_CASE("tokens: the right one is let in, a wrong or missing one is refused", "[rpc][auth]")
{
	r3test::TempDir dir;
	std::ofstream(dir / "token") << "correct horse\n";
	::chmod((dir / "token").c_str(), 0600);
	RpcServerOptions so;
	so.tokenFile = dir / "token";
	auto t = TestServer::start(r3test::memoryBackend(kSize), so);

	auto o = t.clientOptions();
	CHECK_THAT(connectError(o), Catch::Contains("requires a token"));
	o.token = "wrong horse";
	CHECK_THAT(connectError(o), Catch::Contains("token does not match"));
	// Without the token nothing is told about the exports either.
	o.exportName = "nope";
	auto unknown = connectError(o);
	CHECK_THAT(unknown, Catch::Contains("token does not match"));
	CHECK_THAT(unknown, !Catch::Contains("'disk'"));
	o.exportName = "disk";
	o.token = "correct horse";
	auto client = connect(o);
	CHECK(client->remoteSize().value() == kSize);
	CHECK(t.server->stats().refused == 3);

	RpcServerOptions missing;
	missing.tokenFile = dir / "absent";
	auto s = RpcServer::create(r3test::clientRuntime(), missing);
	REQUIRE_FALSE(s);
	CHECK_THAT(s.error().message, Catch::Contains("token file"));
}

TEST_CASE("connections over the limit are closed at once, the others go on", "[rpc][caps]")
{
	RpcServerOptions o;
	o.maxConnections = 2;
	auto t = TestServer::start(r3test::memoryBackend(kSize), o);
	auto a = connect(t.clientOptions());
	auto b = connect(t.clientOptions());
	auto third = r3test::rawConnect(t.port());
	std::string got;
	CHECK(r3test::readUntilClosed(third.get(), got));
	CHECK(got.empty());
	CHECK(t.server->stats().refused == 1);
	std::vector<std::byte> buf(4096);
	CHECK(a->read(buf, 0));
	CHECK(b->read(buf, 0));
}

TEST_CASE("a hello naming an unknown service is refused naming the ones there are", "[rpc]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto fd = r3test::rawConnect(t.port());
	Hello hello{ kProtocolVersion, "disk", "", "raw" };
	hello.service = "sync";
	auto reply = r3test::rawHello(fd.get(), hello);
	CHECK(reply.error == EPROTONOSUPPORT);
	CHECK_THAT(reply.message, Catch::Contains("no service 'sync'"));
	CHECK_THAT(reply.message, Catch::Contains("'block'"));
}
