// r3:// URIs with TLS, client certificates and a token file, through the backend factory
// against an in-process server; the certificates come from openssl (so this is a binary
// of its own: without openssl it skips, and remote_backend_test still runs).

#include <fstream>

#include <sys/stat.h>

#include <r3d/backend_factory.hpp>

#include "backend_test_support.hpp"
#include "rpc_test_support.hpp"

using namespace r3d;
using r3test::TestServer;

namespace {

constexpr uint64_t kSize = (4 << 20) + 1000;

const r3test::Prerequisite openssl = r3test::Prerequisite::program("openssl");

using r3test::openError;

} // namespace

TEST_CASE("r3 URIs carry TLS, client certificates and the token file", "[remote][tls]")
{
	r3test::TestCerts certs;
	r3test::TempDir dir;
	std::ofstream(dir / "token") << "tok-123\n";
	::chmod((dir / "token").c_str(), 0600);
	std::ofstream(dir / "wrong") << "tok-456\n";
	::chmod((dir / "wrong").c_str(), 0600);
	transport::RpcServerOptions so;
	so.tls = transport::TlsServerConfig{ certs / "server.pem", certs / "server.key", certs / "ca.pem" };
	so.tokenFile = dir / "token";
	auto t = TestServer::start(r3test::memoryBackend(kSize), so);
	std::string base = "r3://127.0.0.1:" + t.port() + "/disk?tls-ca=" + (certs / "ca.pem");
	std::string identity = "&tls-cert=" + (certs / "client.pem") + "&tls-key=" + (certs / "client.key");

	auto ok = openBackend(base + identity + "&token-file=" + (dir / "token"));
	REQUIRE(ok);
	CHECK((*ok)->size() == kSize);
	CHECK_THAT(openError(base + identity + "&token-file=" + (dir / "wrong")), Catch::Contains("token does not match"));
	CHECK_THAT(openError(base + "&token-file=" + (dir / "token")), Catch::Contains("refused the TLS session"));
	CHECK_THAT(openError("r3://127.0.0.1:" + t.port() + "/disk"), Catch::Contains("requires TLS"));
}
