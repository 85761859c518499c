#include <r3d/backend_factory.hpp>
#include <r3d/backend_uri.hpp>

#include <catch2/catch.hpp>

#include "backend_test_support.hpp"
#include "test_support.hpp"

using namespace r3d;

namespace {

using r3test::openError;

} // namespace

TEST_CASE("URIs parse into scheme, authority, path and parameters", "[uri]")
{
	auto u = BackendUri::parse("dir:/var/lib/x%20y?size=1G&chunk=64K").value();
	CHECK(u.scheme == "dir");
	CHECK(u.path == "/var/lib/x y");
	CHECK(u.params.at("size") == "1G");
	CHECK(u.params.at("chunk") == "64K");

	auto r = BackendUri::parse("redis://127.0.0.1:6379/vm42?size=8G").value();
	CHECK(r.scheme == "redis");
	CHECK(r.authority == "127.0.0.1:6379");
	CHECK(r.path == "/vm42");

	auto f = BackendUri::parse("file:///srv/state.img").value();
	CHECK(f.authority.empty());
	CHECK(f.path == "/srv/state.img");
}

TEST_CASE("malformed URIs are refused with the reason", "[uri]")
{
	CHECK_THAT(openError(""), Catch::Contains("empty"));
	CHECK_THAT(openError("/tmp/disk.img"), Catch::Contains("expected SCHEME:"));
	CHECK_THAT(openError("dir:/x?size"), Catch::Contains("'size' is not KEY=VALUE"));
	CHECK_THAT(openError("dir:/x?size=1G&size=2G"), Catch::Contains("given twice"));
	CHECK_THAT(openError("file:/x%zz"), Catch::Contains("bad percent escape"));
	CHECK_THAT(openError("sp ace:1"), Catch::Contains("invalid character"));
}

TEST_CASE("unknown schemes and parameters are named", "[uri]")
{
	auto r = openBackend("nfs://server/export");
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == EPROTONOSUPPORT);
	CHECK_THAT(r.error().message, Catch::Contains("unknown backend scheme 'nfs'"));
	CHECK_THAT(r.error().message, Catch::Contains("memory, file, dir"));
	CHECK_THAT(openError("file:/tmp/x?colour=red"), Catch::Contains("unknown parameter 'colour'"));
	CHECK_THAT(openError("memory:1M?size=2M"), Catch::Contains("unknown parameter 'size'"));
}

TEST_CASE("memory sizes: zero, malformed and too large are refused", "[uri][memory]")
{
	CHECK_THAT(openError("memory:0"), Catch::Contains("greater than 0"));
	CHECK_THAT(openError("memory:"), Catch::Contains("expected memory:SIZE"));
	CHECK_THAT(openError("memory:12Q"), Catch::Contains("unknown suffix"));
	CHECK_THAT(openError("memory:999999999999999999999"), Catch::Contains("does not fit in 64 bits"));
	CHECK_THAT(openError("memory:1000T"), Catch::Contains("does not fit in this address space"));
	auto ok = openBackend("memory:256M");
	REQUIRE(ok);
	CHECK((*ok)->size() == 256ull << 20);
}

TEST_CASE("file URIs: create with size, open existing, refuse empty", "[uri][file]")
{
	r3test::TempDir dir;
	auto path = dir / "disk.img";
	CHECK_THAT(openError("file:" + path), Catch::Contains("cannot open"));
	auto created = openBackend("file:" + path + "?size=1M");
	REQUIRE(created);
	CHECK((*created)->size() == 1 << 20);
	auto reopened = openBackend("file://" + path);
	REQUIRE(reopened);
	CHECK((*reopened)->size() == 1 << 20);
	CHECK_THAT(openError("file:" + path + "?size=0"), Catch::Contains("size must be greater than 0"));
	CHECK_THAT(openError("file:" + path + "?size=9E"), Catch::Contains("unknown suffix"));
	CHECK_THAT(openError("file:" + dir.path().string()), Catch::Contains("Is a directory"));
}

TEST_CASE("dir URIs need a size the first time and remember their geometry", "[uri][dir]")
{
	r3test::TempDir dir;
	auto path = dir / "chunks";
	CHECK_THAT(openError("dir:" + path), Catch::Contains("give its size"));
	auto made = openBackend("dir:" + path + "?size=1M&chunk=16K");
	REQUIRE(made);
	CHECK((*made)->size() == 1 << 20);
	auto again = openBackend("dir:" + path);
	REQUIRE(again);
	CHECK((*again)->size() == 1 << 20);
	CHECK_THAT(openError("dir:" + path + "?chunk=64K"), Catch::Contains("was written with chunk=16384"));
	CHECK_THAT(openError("dir:" + path + "?size=2M"), Catch::Contains("not size=2097152"));
	CHECK_THAT(openError("dir:" + (dir / "other") + "?size=1M&chunk=100"), Catch::Contains("outside 512 B"));
}

TEST_CASE("open defaults: a call deadline for the network schemes that set none", "[backend_factory]")
{
	using namespace std::chrono_literals;
	OpenDefaults d{ 2s };
	auto withDefaults = [&](const std::string &text) {
		auto u = BackendUri::parse(text).value();
		applyOpenDefaults(u, d);
		return u;
	};
	for (const char *text : { "r3://h:1/disk", "redis://h/p?size=1M", "s3://b/p?size=1M&endpoint=http://e" }) {
		auto u = withDefaults(text);
		CHECK(u.params.at("deadline") == "2000ms");
		CHECK(u.durationParam("deadline", 1ms).value() == 2s);
		CHECK(u.text == text); // messages name the URI as given
	}
	CHECK(withDefaults("r3://h:1/disk?deadline=9s").params.at("deadline") == "9s");
	CHECK_FALSE(withDefaults("file:/tmp/x.img").params.contains("deadline"));
	CHECK_FALSE(withDefaults("memory:16M").params.contains("deadline"));
	auto none = BackendUri::parse("r3://h:1/disk").value();
	applyOpenDefaults(none, {});
	CHECK_FALSE(none.params.contains("deadline"));
}
