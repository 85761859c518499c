// r3:// URIs through the backend factory, against an in-process server. With TLS:
// remote_backend_tls_test.cpp (it needs openssl).

#include <r3d/backend_factory.hpp>

#include "backend_test_support.hpp"
#include "rpc_test_support.hpp"

using namespace r3d;
using r3test::TestServer;

namespace {

constexpr uint64_t kSize = (4 << 20) + 1000;

using r3test::openError;

} // namespace

TEST_CASE("r3 URIs: malformed ones are refused naming the problem", "[remote][uri]")
{
	CHECK_THAT(openError("r3:/disk"), Catch::Contains("expected r3://HOST[:PORT]/NAME"));
	CHECK_THAT(openError("r3://host:99999/disk"), Catch::Contains("is not a port number"));
	CHECK_THAT(openError("r3://::1:7700/disk"), Catch::Contains("in brackets"));
	CHECK_THAT(openError("r3://h/disk?colour=red"), Catch::Contains("unknown parameter 'colour'"));
	CHECK_THAT(openError("r3://h/disk?tls=maybe"), Catch::Contains("expected on or off"));
	CHECK_THAT(openError("r3://h/disk?deadline=soon"), Catch::Contains("does not start with a number"));
	CHECK_THAT(openError("r3://h/disk?timeout=5y"), Catch::Contains("unknown unit"));
	CHECK_THAT(openError("r3://h/disk?connections=1000"), Catch::Contains("at most 64"));
	CHECK_THAT(openError("r3://h/disk?token-file=/nonexistent"), Catch::Contains("/nonexistent"));
	CHECK_THAT(openError("r3://127.0.0.1:1/disk"), Catch::Contains("Connection refused"));
}

TEST_CASE("an r3 backend behaves like the device it stands for", "[remote]")
{
	auto t = TestServer::start(r3test::memoryBackend(kSize));
	auto remote = openBackend("r3://127.0.0.1:" + t.port() + "/disk?connections=2&timeout=5s&deadline=30s");
	REQUIRE(remote);
	auto &rw = **remote;
	CHECK(rw.size() == kSize);

	auto data = r3test::pattern(3 * 65536 + 11, 7);
	REQUIRE(rw.writeAt(data, 4096 - 3));
	std::vector<std::byte> back(data.size());
	REQUIRE(rw.readAt(back, 4096 - 3));
	CHECK(back == data);
	REQUIRE(rw.sync());

	auto tail = r3test::pattern(1000, 8);
	REQUIRE(rw.writeAt(tail, kSize - 1000));
	std::vector<std::byte> tailBack(1000);
	REQUIRE(rw.readAt(tailBack, kSize - 1000));
	CHECK(tailBack == tail);

	std::vector<std::byte> two(2);
	CHECK(rw.readAt(two, kSize - 1).error().value() == EINVAL);
	CHECK(rw.writeAt(two, kSize - 1).error().value() == ENOSPC);
	CHECK(t.server->stats().requests > 0);
	CHECK(t.server->stats().errors == 0); // range errors are caught before the network

	REQUIRE(rw.trim(4096, 65536));
	REQUIRE(rw.readAt(back, 4096 - 3));
	CHECK(std::equal(back.begin(), back.begin() + 3, data.begin()));
	CHECK(r3test::allZero(std::vector<std::byte>(back.begin() + 3, back.begin() + 3 + 65536)));

	// What one client wrote, another sees.
	auto other = openBackend("r3://127.0.0.1:" + t.port() + "/disk");
	REQUIRE(other);
	REQUIRE((*other)->readAt(tailBack, kSize - 1000));
	CHECK(tailBack == tail);
}
