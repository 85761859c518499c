// Round trips through an in-process RpcServer and RpcClient on loopback: data, errors,
// concurrency, framing abuse, TLS, mutual TLS and tokens.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>

#include "stages/forwarding_read_writer_at.hpp"
#include "stages/pipeline.hpp"
#include "rpc_test_support.hpp"
#include "transport/block/messages.hpp"

using namespace r3d;
using namespace r3d::transport;
using r3test::TestServer;
using r3test::connect;
using r3test::connectError;

namespace {

constexpr uint64_t kSize = 8 << 20;

// Holds reads of offset 0 until released, to show that later requests overtake them.
class GateReadWriterAt final : public stages::ForwardingReadWriterAt
{
public:
	using ForwardingReadWriterAt::ForwardingReadWriterAt;
	bool isFast() const override { return false; } // it blocks: keep it off the network thread

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override
	{
		if (offset == 0) {
			std::unique_lock lock(mutex_);
			blocked_ = true;
			cv_.notify_all();
			cv_.wait(lock, [&] { return open_; });
		}
		return next_->readAt(buf, offset);
	}
	void waitBlocked()
	{
		std::unique_lock lock(mutex_);
		cv_.wait(lock, [&] { return blocked_; });
	}
	void open()
	{
		std::lock_guard lock(mutex_);
		open_ = true;
		cv_.notify_all();
	}

private:
	std::mutex mutex_;
	std::condition_variable cv_;
	bool blocked_ = false;
	bool open_ = false;
};

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
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto client = connect(t.clientOptions());
	CHECK(client->info().size == kSize);
	CHECK(client->remoteSize().value() == kSize);

	auto data = r3test::pattern(100000, 1);
	REQUIRE(client->write(data, 12345));
	std::vector<std::byte> back(data.size());
	REQUIRE(client->read(back, 12345));
	CHECK(back == data);
	REQUIRE(client->sync());

	REQUIRE(client->writeZeroes(12345, 1000));
	REQUIRE(client->trim(20000, 5000));
	REQUIRE(client->read(back, 12345));
	CHECK(r3test::allZero(std::vector<std::byte>(back.begin(), back.begin() + 1000)));
	CHECK(std::equal(back.begin() + 1000, back.begin() + (20000 - 12345), data.begin() + 1000));
	CHECK(r3test::allZero(std::vector<std::byte>(back.begin() + (20000 - 12345), back.begin() + (25000 - 12345))));

	std::vector<IoRange> ranges{ { 20000 + 5000, 100 }, { 12345 + 2000, 50 } };
	std::vector<std::byte> two(150);
	REQUIRE(client->readRanges(ranges, two));
	CHECK(std::equal(two.begin(), two.begin() + 100, data.begin() + (25000 - 12345)));
	CHECK(std::equal(two.begin() + 100, two.end(), data.begin() + 2000));
	CHECK(t.server->stats().requests >= 8);
}

TEST_CASE("the server's errno reaches the caller, the connection stays up", "[rpc]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto client = connect(t.clientOptions());
	std::vector<std::byte> buf(4096);
	auto read = client->read(buf, kSize - 100);
	REQUIRE_FALSE(read);
	CHECK(read.error().value() == EINVAL);
	auto write = client->write(buf, kSize - 100);
	REQUIRE_FALSE(write);
	CHECK(write.error().value() == ENOSPC);
	auto trim = client->trim(kSize, 1);
	REQUIRE_FALSE(trim);
	CHECK(trim.error().value() == ENOSPC);
	std::vector<std::byte> wrong(10);
	std::vector<IoRange> ranges{ { 0, 4 } };
	CHECK(client->readRanges(ranges, wrong).error().value() == EINVAL); // sizes disagree: refused locally
	CHECK(client->read(buf, 0));
	CHECK(t.server->stats().errors == 3);
	CHECK(client->stats().reconnects == 0);
}

TEST_CASE("calls larger than the payload limit are split and reassembled", "[rpc]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto o = t.clientOptions();
	o.maxPayload = 64 * 1024;
	auto client = connect(o);
	auto data = r3test::pattern(3 * 1024 * 1024 + 17, 2);
	REQUIRE(client->write(data, 5));
	std::vector<std::byte> back(data.size());
	REQUIRE(client->read(back, 5));
	CHECK(back == data);
	CHECK(t.server->stats().requests >= 2 * (data.size() / (64 * 1024)));
}

TEST_CASE("many threads share the connections with many requests in flight", "[rpc]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto o = t.clientOptions();
	o.connections = 3;
	auto client = connect(o);
	constexpr int kThreads = 16;
	constexpr uint64_t kSlice = kSize / kThreads;
	std::atomic<int> failures{ 0 };
	std::vector<std::thread> threads;
	for (int i = 0; i < kThreads; ++i) {
		threads.emplace_back([&, i] {
			for (uint64_t off = 0; off < kSlice; off += 4096) {
				auto data = r3test::pattern(4096, static_cast<uint32_t>(i * 100000 + off));
				std::vector<std::byte> back(4096);
				if (!client->write(data, i * kSlice + off) || !client->read(back, i * kSlice + off) ||
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
	auto gate = std::make_shared<GateReadWriterAt>(r3test::memoryBackend(kSize));
	auto t = TestServer::start(gate);
	auto client = connect(t.clientOptions()); // one connection
	std::vector<std::byte> slowBuf(4096);
	std::thread slow([&] { CHECK(client->read(slowBuf, 0)); });
	gate->waitBlocked();
	// The read of offset 0 is stuck in the backend; later requests on the same
	// connection must still be answered.
	std::vector<std::byte> buf(4096);
	for (int i = 1; i <= 20; ++i)
		REQUIRE(client->read(buf, static_cast<uint64_t>(i) * 4096));
	gate->open();
	slow.join();
}

TEST_CASE("chunked exports: the guard refuses stray ranges, read-ranges batches chunks", "[rpc][chunked]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize), {}, 65536);
	auto client = connect(t.clientOptions());
	CHECK(client->info().chunkSize == 65536);
	std::vector<std::byte> chunk(65536);
	CHECK(client->read(chunk, 65536));
	CHECK(client->read(chunk, 100).error().value() == EINVAL);
	std::vector<std::byte> small(100);
	CHECK(client->read(small, 0).error().value() == EINVAL);

	auto data = r3test::pattern(4 * 65536, 3);
	for (int i = 0; i < 4; ++i)
		REQUIRE(client->write(std::span(data).subspan(i * 65536, 65536), (10 + i) * 65536));
	std::vector<IoRange> ranges;
	for (int i = 0; i < 4; ++i)
		ranges.push_back({ static_cast<uint64_t>(10 + i) * 65536, 65536 });
	uint64_t before = t.server->stats().requests;
	std::vector<std::byte> back(data.size());
	REQUIRE(client->readRanges(ranges, back));
	CHECK(back == data);
	CHECK(t.server->stats().requests == before + 1);
	CHECK(client->trim(65536, 3 * 65536));
	CHECK(client->trim(65536, 100).error().value() == EINVAL);

	// The raw backend takes whole chunks (a run of them in one READ_RANGES trip); through
	// the pipeline the export works at any offset.
	auto raw = openBackend("r3://127.0.0.1:" + t.port() + "/disk");
	REQUIRE(raw);
	CHECK((*raw)->preferredChunk() == 65536);
	std::vector<std::byte> run(data.size());
	before = t.server->stats().requests;
	REQUIRE((*raw)->readAt(run, 10 * 65536));
	CHECK(run == data);
	CHECK(t.server->stats().requests == before + 1);
	CHECK((*raw)->readAt(std::span(run).first(1000), 10 * 65536).error().value() == EINVAL);
	auto any = r3d::stages::openPipeline("r3://127.0.0.1:" + t.port() + "/disk", {});
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
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto client = connect(t.clientOptions());
	long rssBefore = maxRssKiB();

	auto fd = r3test::rawConnect(t.port());
	rawHello(fd.get());
	std::array<std::byte, kFrameHeaderSize> header;
	encodeFrameHeader(FrameHeader{ FrameKind::Request, 0xffffffff, 0xffffffff }, header);
	r3test::sendAll(fd.get(), header.data(), header.size());
	std::string got;
	CHECK(r3test::readUntilClosed(fd.get(), got));
	CHECK(got.empty());

	// A declared 32 MiB + 1 payload is refused the same way.
	auto fd2 = r3test::rawConnect(t.port());
	rawHello(fd2.get());
	Request w{ 1, Op::Write, 0, 32 * 1024 * 1024 + 1, {} };
	std::string frame;
	appendFrame(frame, w, 32 * 1024 * 1024 + 1);
	r3test::sendAll(fd2.get(), frame.data(), frame.size());
	CHECK(r3test::readUntilClosed(fd2.get(), got));

	CHECK(maxRssKiB() - rssBefore < 16 * 1024);
	std::vector<std::byte> buf(4096);
	CHECK(client->read(buf, 0)); // everyone else is still served
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

TEST_CASE("TLS: verified server, refused impostors, plaintext mismatches explained", "[rpc][tls]")
{
	r3test::TestCerts certs;
	RpcServerOptions so;
	so.tls = TlsServerConfig{ certs / "server.pem", certs / "server.key", "" };
	auto t = TestServer::start(r3test::memoryBackend(kSize), so);
	auto o = t.clientOptions();

	SECTION("a client that trusts the CA gets through")
	{
		o.tls = TlsClientConfig{ TlsMode::On, certs / "ca.pem", "", "", "" };
		auto client = connect(o);
		auto data = r3test::pattern(200000, 5);
		REQUIRE(client->write(data, 0));
		std::vector<std::byte> back(data.size());
		REQUIRE(client->read(back, 0));
		CHECK(back == data);
	}
	SECTION("a client that trusts another CA refuses the server")
	{
		o.tls = TlsClientConfig{ TlsMode::On, certs / "rogue-ca.pem", "", "", "" };
		auto message = connectError(o);
		CHECK_THAT(message, Catch::Contains("TLS handshake failed"));
		CHECK_THAT(message, Catch::Contains("certificate verify failed"));
	}
	SECTION("the certificate must name the host")
	{
		o.tls = TlsClientConfig{ TlsMode::On, certs / "ca.pem", "", "", "other.example" };
		CHECK_THAT(connectError(o), Catch::Contains("certificate verify failed"));
	}
	SECTION("a plaintext client is told the server wants TLS")
	{
		CHECK_THAT(connectError(o), Catch::Contains("this server requires TLS"));
	}
	// The server goes on serving after each refusal.
	o.tls = TlsClientConfig{ TlsMode::On, certs / "ca.pem", "", "", "" };
	CHECK(connect(o)->remoteSize().value() == kSize);
}

TEST_CASE("a TLS client against a plaintext server is told why", "[rpc][tls]")
{
	r3test::TestCerts certs;
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto o = t.clientOptions();
	o.tls = TlsClientConfig{ TlsMode::On, certs / "ca.pem", "", "", "" };
	auto message = connectError(o);
	CHECK_THAT(message, Catch::Contains("TLS handshake failed"));
	CHECK_THAT(message, Catch::Contains("does it use TLS"));
	CHECK(t.server->stats().refused == 1);
}

TEST_CASE("mutual TLS: only clients with a certificate from the CA", "[rpc][tls]")
{
	r3test::TestCerts certs;
	RpcServerOptions so;
	so.tls = TlsServerConfig{ certs / "server.pem", certs / "server.key", certs / "ca.pem" };
	auto t = TestServer::start(r3test::memoryBackend(kSize), so);
	auto o = t.clientOptions();
	o.tls = TlsClientConfig{ TlsMode::On, certs / "ca.pem", "", "", "" };
	CHECK_THAT(connectError(o), Catch::Contains("the server refused the TLS session"));
	o.tls.certFile = certs / "rogue-client.pem";
	o.tls.keyFile = certs / "rogue-client.key";
	CHECK_THAT(connectError(o), Catch::Contains("the server refused the TLS session"));
	o.tls.certFile = certs / "client.pem";
	o.tls.keyFile = certs / "client.key";
	auto client = connect(o);
	CHECK(client->remoteSize().value() == kSize);
	CHECK(t.server->stats().refused == 2);
}

TEST_CASE("TLS material that cannot be used is named", "[rpc][tls]")
{
	r3test::TestCerts certs;
	auto server = RpcServer::create(r3test::clientRuntime(),
					RpcServerOptions{ TlsServerConfig{ certs / "server.pem", certs / "client.key", "" } });
	REQUIRE_FALSE(server);
	CHECK_THAT(server.error().message, Catch::Contains("does not belong to"));
	server = RpcServer::create(r3test::clientRuntime(),
				   RpcServerOptions{ TlsServerConfig{ "/nonexistent.pem", certs / "server.key", "" } });
	REQUIRE_FALSE(server);
	CHECK_THAT(server.error().message, Catch::Contains("/nonexistent.pem"));
	RpcClientOptions o;
	o.host = "127.0.0.1";
	o.port = "1";
	o.tls = TlsClientConfig{ TlsMode::On, certs / "server.key", "", "", "" };
	CHECK_THAT(connectError(o), Catch::Contains("no usable CA certificate"));
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
