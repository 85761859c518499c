#include "config.hpp"

#include <fstream>

#include <catch2/catch.hpp>

#include "test_support.hpp"

using r3mapd::Config;

namespace {

std::string errorOf(const std::string &json)
{
	auto c = Config::parse(json, "r3mapd.json");
	REQUIRE_FALSE(c);
	return c.error().message;
}

} // namespace

TEST_CASE("an empty object gives the documented defaults", "[config]")
{
	auto c = Config::parse("{}", "x").value();
	CHECK(c.defaultChunkSize == 4096);
	CHECK(c.maxRequestSize == 32u << 20);
	CHECK(c.allowedSchemes.empty());
	CHECK(c.schemeAllowed("memory"));
	CHECK(c.unprivilegedSchemes == std::set<std::string>{ "memory", "r3", "redis", "s3" });
	CHECK_FALSE(c.schemeUnprivileged("file"));
	CHECK_FALSE(c.schemeUnprivileged("dir"));
	CHECK(c.logLevel == "info");
	CHECK(c.accessGroup == "r3map");
	CHECK(c.busCheckSeconds == 10);
	CHECK(c.regionSocket == "/run/r3map/regions.sock");
}

TEST_CASE("every key is read, sizes as numbers or text", "[config]")
{
	auto c = Config::parse(R"({"default_chunk_size": "64K", "max_request_size": 1048576,
		"allowed_schemes": ["memory", "file"], "unprivileged_schemes": ["memory"],
		"log_level": "debug", "access_group": 1234})",
			       "x")
			 .value();
	CHECK(c.defaultChunkSize == 65536);
	CHECK(c.maxRequestSize == 1048576);
	CHECK(c.schemeAllowed("file"));
	CHECK_FALSE(c.schemeAllowed("dir"));
	CHECK(c.schemeUnprivileged("memory"));
	CHECK_FALSE(c.schemeUnprivileged("r3"));
	CHECK(c.logLevel == "debug");
	CHECK(c.accessGroup == "1234");
	CHECK(Config::parse(R"({"region_socket": "/tmp/r.sock"})", "x").value().regionSocket == "/tmp/r.sock");
	CHECK(Config::parse(R"({"region_socket": ""})", "x").value().regionSocket.empty());
}

TEST_CASE("bad values name the file, the key and the problem", "[config]")
{
	CHECK_THAT(errorOf(R"({"default_chunk_size": 1000})"),
		   Catch::StartsWith("r3mapd.json: key 'default_chunk_size': chunk size 1000 is not a power of two"));
	CHECK_THAT(errorOf(R"({"default_chunk_size": "128M"})"), Catch::Contains("from 512 B to 64 MiB"));
	CHECK_THAT(errorOf(R"({"default_chunk_size": true})"), Catch::Contains("expected a size in bytes"));
	CHECK_THAT(errorOf(R"({"default_chunk_size": -4096})"), Catch::Contains("expected a size in bytes"));
	CHECK_THAT(errorOf(R"({"max_request_size": "1G"})"),
		   Catch::Contains("key 'max_request_size': 1 GiB is outside 4 KiB .. 256 MiB"));
	CHECK_THAT(errorOf(R"({"max_request_size": "12X"})"), Catch::Contains("unknown suffix"));
	CHECK_THAT(errorOf(R"({"allowed_schemes": []})"), Catch::Contains("is empty"));
	CHECK_THAT(errorOf(R"({"allowed_schemes": ["memory", 3]})"), Catch::Contains("3 is not a string"));
	CHECK_THAT(errorOf(R"({"allowed_schemes": ["nfs"]})"),
		   Catch::Contains("unknown scheme 'nfs' (known: memory, file, dir"));
	CHECK_THAT(errorOf(R"({"unprivileged_schemes": ["memory", "nfs"]})"),
		   Catch::Contains("key 'unprivileged_schemes': unknown scheme 'nfs'"));
	CHECK_THAT(errorOf(R"({"unprivileged_schemes": "memory"})"), Catch::Contains("expected an array"));
	// Empty: only root may use any backend.
	CHECK(Config::parse(R"({"unprivileged_schemes": []})", "x").value().unprivilegedSchemes.empty());
	CHECK_THAT(errorOf(R"({"log_level": "chatty"})"), Catch::Contains("key 'log_level': \"chatty\" is not one of"));
	CHECK_THAT(errorOf(R"({"access_group": ""})"), Catch::Contains("expected a group name or number"));
	CHECK(Config::parse(R"({"bus_check_seconds": 0})", "x").value().busCheckSeconds == 0);
	CHECK_THAT(errorOf(R"({"bus_check_seconds": 3601})"), Catch::Contains("key 'bus_check_seconds': expected seconds"));
	CHECK_THAT(errorOf(R"({"bus_check_seconds": "10s"})"), Catch::Contains("from 0 (off) to 3600"));
	CHECK_THAT(errorOf(R"({"region_socket": "run/r.sock"})"), Catch::Contains("expected an absolute path"));
	CHECK_THAT(errorOf(R"({"region_socket": 3})"), Catch::Contains("expected an absolute path"));
	CHECK_THAT(errorOf(R"({"chunk_size": 4096})"),
		   Catch::Contains("key 'chunk_size': unknown key (known: default_chunk_size, max_request_size"));
}

TEST_CASE("malformed documents are refused", "[config]")
{
	CHECK_THAT(errorOf("{"), Catch::Contains("not valid JSON"));
	CHECK_THAT(errorOf("[]"), Catch::Contains("expected a JSON object"));
	CHECK_THAT(errorOf("\"x\""), Catch::Contains("expected a JSON object"));
}

TEST_CASE("a missing file is fine at the default path, an error when asked for", "[config]")
{
	r3test::TempDir tmp;
	CHECK(Config::load(tmp / "absent.json", false).value().logLevel == "info");
	auto missing = Config::load(tmp / "absent.json", true);
	REQUIRE_FALSE(missing);
	CHECK_THAT(missing.error().message, Catch::Contains("absent.json: cannot read"));

	std::ofstream(tmp / "c.json") << R"({"log_level": "warning"})";
	CHECK(Config::load(tmp / "c.json", true).value().logLevel == "warning");
	std::ofstream(tmp / "bad.json") << R"({"log_level": 3})";
	auto bad = Config::load(tmp / "bad.json", true);
	REQUIRE_FALSE(bad);
	CHECK_THAT(bad.error().message, Catch::StartsWith(tmp / "bad.json" + ": key 'log_level'"));
}

TEST_CASE("chunk sizes: powers of two from 512 B to 64 MiB", "[config]")
{
	CHECK(r3mapd::checkChunkSize(512));
	CHECK(r3mapd::checkChunkSize(64u << 20));
	CHECK_FALSE(r3mapd::checkChunkSize(0));
	CHECK_FALSE(r3mapd::checkChunkSize(256));
	CHECK_FALSE(r3mapd::checkChunkSize(128u << 20));
	CHECK_FALSE(r3mapd::checkChunkSize(4097));
}
