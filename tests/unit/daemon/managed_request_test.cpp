#include "managed_request.hpp"

#include <fstream>

#include <catch2/catch.hpp>

#include "errors.hpp"
#include "managed_opener.hpp"
#include "service/request_options.hpp"
#include "state_store.hpp"
#include "test_support.hpp"

using namespace r3mapd;
using service::OptionMap;

TEST_CASE("a managed request's spec round-trips through the state store", "[managed]")
{
	ManagedRequest r;
	REQUIRE(r.set("cache", "disk1"));
	REQUIRE(r.set("pull-workers", "4"));
	REQUIRE(r.set("push-interval", "500ms"));
	REQUIRE(r.set("order", "reverse"));
	REQUIRE(r.set("pull-first", "10%"));
	REQUIRE(r.set("background", "no"));
	REQUIRE(r.set("discard-local", "true"));

	r3test::TempDir dir;
	auto store = StateStore::open(dir / "state");
	REQUIRE(store);
	REQUIRE((*store)->save("mounts", "1", { { "kind", "managed" }, { "managed", r.spec(65536) } }));
	auto specs = (*store)->load("mounts");
	REQUIRE(specs.size() == 1);
	auto back = ManagedRequest::fromSpec(specs[0].second["managed"]);
	REQUIRE(back);
	// As given, with the chunk it resolved to; a restore never throws the cache away.
	auto want = r.given;
	want.erase("discard-local");
	want["chunk-size"] = "65536";
	CHECK(back->given == want);
	CHECK(back->options.cache == "disk1");
	CHECK(back->options.pullWorkers == 4);
	CHECK(back->options.pushInterval == std::chrono::milliseconds(500));
	CHECK(back->options.order == r3d::stages::PullOrder::Reverse);
	CHECK(back->options.pullFirstPercent == 10);
	CHECK_FALSE(back->options.background);
	CHECK_FALSE(back->options.discardLocal);
	CHECK(back->options.chunk == 65536);

	CHECK_FALSE(ManagedRequest::fromSpec(nlohmann::json::array()));
	CHECK_FALSE(ManagedRequest::fromSpec({ { "pull-workers", 4 } }));
	CHECK(ManagedRequest::fromSpec({ { "colour", "red" } }).error().code == Errc::InvalidArgument);
}

TEST_CASE("Mount options: managed and its keys, through the one parser", "[managed]")
{
	auto r = service::mountRequest("memory:1M", { { "managed", sdbus::Variant(true) },
						      { "cache", sdbus::Variant(std::string("c")) },
						      { "pull-workers", sdbus::Variant(uint32_t(3)) },
						      { "pull-rate", sdbus::Variant(uint64_t(1) << 20) },
						      { "background", sdbus::Variant(false) } });
	REQUIRE(r);
	REQUIRE(r->managed);
	CHECK(r->managed->options.pullWorkers == 3);
	CHECK(r->managed->options.pullRate == 1u << 20);
	CHECK_FALSE(r->managed->options.background);
	CHECK(r->managed->given.at("pull-workers") == "3");

	CHECK_FALSE(service::mountRequest("memory:1M", {})->managed);
	CHECK_FALSE(service::mountRequest("memory:1M", { { "managed", sdbus::Variant(false) } })->managed);

	auto error = [](const OptionMap &options) {
		auto e = service::mountRequest("memory:1M", options);
		REQUIRE_FALSE(e);
		CHECK(e.error().code == Errc::InvalidArgument);
		return e.error().message;
	};
	CHECK_THAT(error({ { "cache", sdbus::Variant(std::string("c")) } }),
		   Catch::Contains("option 'cache' goes with managed"));
	CHECK_THAT(error({ { "managed", sdbus::Variant(true) }, { "pull-workers", sdbus::Variant(std::string("lots")) } }),
		   Catch::Contains("pull-workers: 'lots' is not a number from 1 to 256"));
	CHECK_THAT(error({ { "managed", sdbus::Variant(true) }, { "pull-workers", sdbus::Variant(2.5) } }),
		   Catch::Contains("option 'pull-workers': expected s"));
	CHECK_THAT(error({ { "managed", sdbus::Variant(true) }, { "colour", sdbus::Variant(std::string("red")) } }),
		   Catch::Contains("unknown option 'colour'") && Catch::Contains("remote-timeout"));
	CHECK_THAT(error({ { "managed", sdbus::Variant(std::string("yes")) } }), Catch::Contains("expected b"));

	auto stop = service::stopOptions({ { "discard-dirty", sdbus::Variant(true) } });
	REQUIRE(stop);
	CHECK(stop->discardDirty);
	CHECK_FALSE(service::unmountOptions({ { "discard-dirty", sdbus::Variant(std::string("yes")) } }));
	CHECK_FALSE(service::unmountOptions({ { "force", sdbus::Variant(true) } }));
}

TEST_CASE("cache directories under the daemon's rules", "[managed]")
{
	CHECK(resolveCacheDir("", "/var/lib/r3map", 1000).value().empty());
	CHECK(resolveCacheDir("memory", "/var/lib/r3map", 1000).value().empty());
	CHECK(resolveCacheDir("disk-1.a_b", "/var/lib/r3map", 1000).value() == "/var/lib/r3map/caches/disk-1.a_b");
	CHECK(resolveCacheDir("/srv/cache", "", 0).value() == "/srv/cache");
	CHECK(resolveCacheDir("/srv/cache", "/var/lib/r3map", 1000).error().code == Errc::NotPermitted);
	CHECK(resolveCacheDir("a/b", "/var/lib/r3map", 0).error().code == Errc::InvalidArgument);
	CHECK(resolveCacheDir("..", "/var/lib/r3map", 0).error().code == Errc::InvalidArgument);
	CHECK(resolveCacheDir(".hidden", "/var/lib/r3map", 0).error().code == Errc::InvalidArgument);
	auto none = resolveCacheDir("disk", "", 0);
	REQUIRE_FALSE(none);
	CHECK(none.error().code == Errc::InvalidArgument);
	CHECK_THAT(none.error().message, Catch::Contains("state_dir"));
}
