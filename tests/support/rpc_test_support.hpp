#pragma once

// In-process r3 transport servers and TLS material for the transport tests.

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <r3d/backend_factory.hpp>
#include <r3d/unique_fd.hpp>

#include "base/host_port.hpp"
#include "base/runtime.hpp"
#include "net_support.hpp"
#include "test_support.hpp"
#include "transport/block/messages.hpp"
#include "transport/block/rpc_client.hpp"
#include "transport/block/rpc_server.hpp"

#ifndef R3_SOURCE_ROOT
#error "R3_SOURCE_ROOT must name the source tree (for tests/support/make_test_certs.sh)"
#endif

namespace r3test {

/// The Runtime of the clients of a test process: they outlive the servers they talk to
/// (a restart replaces the TestServer), so they do not run on one of those.
inline r3d::Runtime &clientRuntime()
{
	static r3d::Runtime runtime(r3d::RuntimeOptions{ 1, 1, {} });
	return runtime;
}

/// A server on 127.0.0.1 (port picked by the kernel unless given) exporting `backend` as "disk",
/// on a Runtime of its own.
struct TestServer {
	std::unique_ptr<r3d::Runtime> runtime; ///< first: outlives the server
	std::shared_ptr<r3d::ReadWriterAt> backend;
	std::unique_ptr<r3d::transport::RpcServer> server;
	std::string address;

	static TestServer start(std::shared_ptr<r3d::ReadWriterAt> backend, r3d::transport::RpcServerOptions options = {},
				uint64_t chunkSize = 0, const std::string &listen = "127.0.0.1:0")
	{
		TestServer t;
		t.runtime = std::make_unique<r3d::Runtime>();
		t.backend = std::move(backend);
		auto s = r3d::transport::RpcServer::create(*t.runtime, std::move(options));
		if (!s)
			FAIL(s.error().message);
		t.server = std::move(*s);
		t.server->addExport(r3d::transport::RpcExport{ "disk", t.backend, chunkSize, false });
		auto a = t.server->listen(listen);
		if (!a)
			FAIL(a.error().message);
		t.address = *a;
		t.server->start();
		return t;
	}

	std::string port() const { return r3d::parseHostPort(address).value().port; }

	r3d::transport::RpcClientOptions clientOptions() const
	{
		r3d::transport::RpcClientOptions o;
		o.host = "127.0.0.1";
		o.port = port();
		o.exportName = "disk";
		o.connectTimeout = std::chrono::milliseconds(3000);
		return o;
	}
};

inline std::shared_ptr<r3d::ReadWriterAt> memoryBackend(uint64_t size)
{
	auto r = r3d::openBackend("memory:" + std::to_string(size));
	if (!r)
		FAIL(r.error().message);
	return *r;
}

/// A connected client; fails the test with the reason otherwise.
inline std::unique_ptr<r3d::transport::RpcClient> connect(const r3d::transport::RpcClientOptions &o)
{
	auto c = r3d::transport::RpcClient::connect(clientRuntime(), o);
	if (!c)
		FAIL(c.error().message);
	return std::move(*c);
}

/// Why connecting with `o` fails; fails the test if it does not.
inline std::string connectError(const r3d::transport::RpcClientOptions &o)
{
	auto c = r3d::transport::RpcClient::connect(clientRuntime(), o);
	REQUIRE_FALSE(c);
	return c.error().message;
}

/// What most transport tests start from: a server exporting `backend` and a client
/// connected to it with the server's client options, changed first by `adjust`.
class Fixture
{
public:
	explicit Fixture(std::shared_ptr<r3d::ReadWriterAt> backend,
			 const std::function<void(r3d::transport::RpcClientOptions &)> &adjust = {},
			 r3d::transport::RpcServerOptions serverOptions = {}, uint64_t chunkSize = 0)
		: chunkSize_(chunkSize), t_(TestServer::start(std::move(backend), std::move(serverOptions), chunkSize))
	{
		auto o = t_.clientOptions();
		if (adjust)
			adjust(o);
		client_ = connect(o);
	}

	r3d::transport::RpcClient &client() { return *client_; }
	r3d::transport::RpcServer &server() { return *t_.server; }
	std::string port() const { return t_.port(); }

	/// A new server for the same backend on the same address, after server().stop():
	/// the client finds it when it reconnects.
	void restart(r3d::transport::RpcServerOptions options = {})
	{
		// Move assignment would replace the runtime before the server that runs on it.
		t_.server.reset();
		t_.runtime.reset();
		t_ = TestServer::start(t_.backend, std::move(options), chunkSize_, t_.address);
	}

private:
	uint64_t chunkSize_;
	TestServer t_;
	std::unique_ptr<r3d::transport::RpcClient> client_; // goes first, as it would in a test body
};

/// CA, server, client and rogue certificates from tests/support/make_test_certs.sh. A
/// binary that makes them holds only cases that need openssl, and declares it:
///     const r3test::Prerequisite openssl = r3test::Prerequisite::program("openssl");
class TestCerts
{
public:
	TestCerts()
	{
		std::string cmd = std::string(R3_SOURCE_ROOT) + "/tests/support/make_test_certs.sh " + dir_.path().string();
		if (std::system(cmd.c_str()) != 0)
			FAIL("make_test_certs.sh failed (is openssl a Prerequisite of this binary?)");
	}
	std::string operator/(const std::string &name) const { return dir_ / name; }

private:
	TempDir dir_;
};

/// A plain TCP connection, for speaking broken protocol at a server.
inline r3d::UniqueFd rawConnect(const std::string &port)
{
	auto fd = tryConnect(static_cast<uint16_t>(std::stoi(port)));
	REQUIRE(fd);
	timeval tv{ 10, 0 };
	::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

inline void sendAll(int fd, const void *data, size_t n)
{
	REQUIRE(::send(fd, data, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n));
}

/// Reads until the server closes or resets the connection; returns what came (false on timeout).
inline bool readUntilClosed(int fd, std::string &got)
{
	char buf[4096];
	for (;;) {
		ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true; // closed, gracefully or with a reset
		if (n < 0)
			return false;
		got.append(buf, static_cast<size_t>(n));
	}
}

/// Receives exactly `n` bytes; false when the connection ended first.
inline bool recvAll(int fd, void *data, size_t n)
{
	return n == 0 || ::recv(fd, data, n, MSG_WAITALL) == static_cast<ssize_t>(n);
}

/// Speaks `hello` on a raw socket and returns the server's reply.
inline r3d::transport::HelloReply rawHello(int fd, const r3d::transport::Hello &hello)
{
	using namespace r3d::transport;
	std::string frame;
	appendFrame(frame, hello);
	sendAll(fd, frame.data(), frame.size());
	std::array<std::byte, kFrameHeaderSize> header;
	REQUIRE(recvAll(fd, header.data(), header.size()));
	auto h = decodeFrameHeader(header, FrameKind::HelloReply, FrameLimits{});
	REQUIRE(h);
	std::vector<std::byte> meta(h->metaLength);
	REQUIRE(recvAll(fd, meta.data(), meta.size()));
	auto reply = decodeHelloReply(meta);
	REQUIRE(reply);
	return *reply;
}

/// Sends one request frame and its payload on a raw socket.
inline void rawRequest(int fd, const r3d::transport::Request &request, std::span<const std::byte> payload = {})
{
	std::string frame;
	appendFrame(frame, request, static_cast<uint32_t>(payload.size()));
	frame.append(reinterpret_cast<const char *>(payload.data()), payload.size());
	sendAll(fd, frame.data(), frame.size());
}

/// Reads one response frame; its payload goes to `payload` (resized). False when the
/// connection ended first.
inline bool rawResponse(int fd, r3d::transport::Response &response, std::vector<std::byte> &payload)
{
	using namespace r3d::transport;
	std::array<std::byte, kFrameHeaderSize> header;
	if (!recvAll(fd, header.data(), header.size()))
		return false;
	auto h = decodeFrameHeader(header, FrameKind::Response, FrameLimits{});
	REQUIRE(h);
	std::vector<std::byte> meta(h->metaLength);
	payload.resize(h->payloadLength);
	if (!recvAll(fd, meta.data(), meta.size()) || !recvAll(fd, payload.data(), payload.size()))
		return false;
	auto r = decodeResponse(meta);
	REQUIRE(r);
	response = *r;
	return true;
}

} // namespace r3test
