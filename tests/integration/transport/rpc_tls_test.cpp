// TLS and mutual TLS through an in-process RpcServer and RpcClient on loopback, with
// throwaway certificates from openssl (so these cases are a binary of their own: without
// openssl it skips, and rpc_test still runs).

#include "rpc_test_support.hpp"

using namespace r3d;
using namespace r3d::transport;
using r3test::TestServer;
using r3test::connect;
using r3test::connectError;

namespace {

constexpr uint64_t kSize = 8 << 20;

const r3test::Prerequisite openssl = r3test::Prerequisite::program("openssl");

} // namespace

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
	auto server = RpcServer::create(r3test::clientRuntime(), RpcServerOptions{ TlsServerConfig{ certs / "server.pem", certs / "client.key", "" } });
	REQUIRE_FALSE(server);
	CHECK_THAT(server.error().message, Catch::Contains("does not belong to"));
	server = RpcServer::create(r3test::clientRuntime(), RpcServerOptions{ TlsServerConfig{ "/nonexistent.pem", certs / "server.key", "" } });
	REQUIRE_FALSE(server);
	CHECK_THAT(server.error().message, Catch::Contains("/nonexistent.pem"));
	RpcClientOptions o;
	o.host = "127.0.0.1";
	o.port = "1";
	o.tls = TlsClientConfig{ TlsMode::On, certs / "server.key", "", "", "" };
	CHECK_THAT(connectError(o), Catch::Contains("no usable CA certificate"));
}
