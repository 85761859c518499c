#include "backend_opener.hpp"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "config.hpp"
#include "errors.hpp"
#include "test_support.hpp"

using namespace r3mapd;

namespace {

constexpr uid_t kRoot = 0;
constexpr uid_t kMember = 65534; // any uid but 0: the daemon's access check came before

r3d::Error openError(const Config &config, const std::string &uri, uid_t uid)
{
	auto r = openAllowedBackend(config, uri, std::nullopt, uid);
	REQUIRE_FALSE(r);
	return r.error();
}

} // namespace

TEST_CASE("callers other than root cannot make the daemon open a local path", "[backend]")
{
	Config config;
	r3test::TempDir tmp;
	std::ofstream(tmp / "root-only") << "secret\n";

	for (std::string uri : { "file:" + tmp / "root-only", "dir:" + tmp / "d?size=1M" }) {
		INFO(uri);
		auto e = openError(config, uri, kMember);
		CHECK(e.code == Errc::NotPermitted);
		CHECK_THAT(e.message, Catch::Contains("uid 65534 may not use scheme"));
		CHECK_THAT(e.message, Catch::Contains("only memory, r3, redis, s3 (unprivileged_schemes"));
		CHECK_THAT(e.message, Catch::Contains("ask root"));
	}
	CHECK_FALSE(std::filesystem::exists(tmp / "d")); // refused before anything was created

	// Root may, and so may everyone for the network and memory schemes.
	CHECK(openAllowedBackend(config, "file:" + tmp / "root-only?size=4096", std::nullopt, kRoot));
	CHECK(openAllowedBackend(config, "memory:1M", std::nullopt, kMember));
}

TEST_CASE("callers other than root may not pass a parameter that names a local file", "[backend]")
{
	Config config;
	r3test::TempDir tmp;
	// The files do not exist: had the daemon read one, the error would say so (BackendFailed).
	for (const char *param : { "token-file", "tls-ca", "tls-cert", "tls-key" }) {
		std::string uri = fmt::format("r3://127.0.0.1:1/x?{}={}&connect-timeout=1s", param, tmp / "absent");
		INFO(uri);
		auto e = openError(config, uri, kMember);
		CHECK(e.code == Errc::NotPermitted);
		CHECK_THAT(e.message, Catch::Contains(fmt::format("may not use parameter '{}': it names a local file", param)));
		CHECK(classify(openError(config, uri, kRoot).code) != Errc::NotPermitted);
	}
	CHECK(namesLocalFile("password-file"));
	CHECK_FALSE(namesLocalFile("tls-name"));
	CHECK_FALSE(namesLocalFile("tls"));
}

TEST_CASE("unprivileged_schemes narrows what others may use; allowed_schemes still applies", "[backend]")
{
	Config config;
	config.unprivilegedSchemes = { "memory" };
	auto e = openError(config, "r3://127.0.0.1:1/x", kMember);
	CHECK(e.code == Errc::NotPermitted);
	CHECK_THAT(e.message, Catch::Contains("only memory (unprivileged_schemes"));

	config.unprivilegedSchemes = {};
	e = openError(config, "memory:1M", kMember);
	CHECK(e.code == Errc::NotPermitted);
	CHECK_THAT(e.message, Catch::Contains("only no scheme at all"));
	CHECK(openAllowedBackend(config, "memory:1M", std::nullopt, kRoot));

	config.unprivilegedSchemes = { "memory", "file" };
	config.allowedSchemes = { "file" };
	CHECK(openError(config, "memory:1M", kMember).code == Errc::SchemeNotAllowed);
	// An unknown scheme is a bad URI for everyone.
	CHECK(openError(config, "nfs://host/x", kMember).code == Errc::BadUri);
}

TEST_CASE("file: and dir: paths must be absolute, even for root", "[backend]")
{
	Config config;
	for (const char *uri : { "file:disk.img?size=1M", "dir:chunks?size=1M", "file:./x?size=1M" }) {
		INFO(uri);
		auto e = openError(config, uri, kRoot);
		CHECK(e.code == Errc::InvalidArgument);
		CHECK_THAT(e.message, Catch::EndsWith("path must be absolute"));
	}
}

TEST_CASE("fault+ is for root, and the inner backend's rules still apply", "[backend]")
{
	Config config;
	auto e = openError(config, "fault+memory:1M?fault-eio=0.5", kMember);
	CHECK(e.code == Errc::NotPermitted);
	CHECK_THAT(e.message, Catch::Contains("uid 65534 may not use fault+"));
	auto rw = openAllowedBackend(config, "fault+memory:1M?fault-eio-range=0-4K", std::nullopt, kRoot);
	REQUIRE(rw);
	std::vector<std::byte> buf(512);
	CHECK_FALSE((*rw)->readAt(buf, 0));
	CHECK((*rw)->readAt(buf, 8192));
	// The size the caller asks for reaches the inner backend; its path must be absolute.
	r3test::TempDir tmp;
	auto sized = openAllowedBackend(config, "fault+file:" + tmp / "f.img?fault-seed=1", 1 << 20, kRoot);
	REQUIRE(sized);
	CHECK((*sized)->size() == 1u << 20);
	CHECK(openError(config, "fault+file:rel.img?size=1M", kRoot).code == Errc::InvalidArgument);
	config.allowedSchemes = { "memory" };
	CHECK(openError(config, "fault+file:/tmp/x?size=1M", kRoot).code == Errc::SchemeNotAllowed);
	CHECK(openError(config, "fault+memory:1M?fault-eio=3", kRoot).code == Errc::BadUri);
}
