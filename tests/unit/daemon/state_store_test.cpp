#include "state_store.hpp"

#include <fstream>

#include <catch2/catch.hpp>

#include "test_support.hpp"

using r3mapd::StateStore;

TEST_CASE("ids and specs survive reopening the store", "[state]")
{
	r3test::TempDir dir;
	{
		auto s = StateStore::open(dir / "state");
		REQUIRE(s);
		CHECK((*s)->persistent());
		CHECK((*s)->nextId("mounts") == 1);
		REQUIRE((*s)->setNextId("mounts", 4));
		REQUIRE((*s)->save("mounts", "3", { { "backend", "memory:1M" } }));
		REQUIRE((*s)->save("mounts", "2", { { "backend", "memory:2M" } }));
		REQUIRE((*s)->remove("mounts", "2"));
	}
	auto s = StateStore::open(dir / "state");
	REQUIRE(s);
	CHECK((*s)->nextId("mounts") == 4);
	auto specs = (*s)->load("mounts");
	REQUIRE(specs.size() == 1);
	CHECK(specs[0].first == "3");
	CHECK(specs[0].second["backend"] == "memory:1M");
	CHECK((*s)->nextId("exports") == 1);
}

TEST_CASE("a spec newer than the counter is never handed out again", "[state]")
{
	r3test::TempDir dir;
	auto s = StateStore::open(dir / "state");
	REQUIRE(s);
	REQUIRE((*s)->setNextId("mounts", 2));
	REQUIRE((*s)->save("mounts", "7", { { "backend", "memory:1M" } })); // killed before the counter
	CHECK((*s)->nextId("mounts") == 8);
}

TEST_CASE("corrupt specs are reported and skipped, never fatal", "[state]")
{
	r3test::TempDir dir;
	auto s = StateStore::open(dir / "state");
	REQUIRE(s);
	REQUIRE((*s)->save("mounts", "1", { { "backend", "memory:1M" } }));
	std::ofstream(dir / "state/mounts/2.json") << "{ torn";
	std::ofstream(dir / "state/mounts/x.json") << "{}";
	std::vector<std::string> bad;
	auto specs = (*s)->load("mounts", &bad);
	CHECK(specs.size() == 1);
	CHECK(bad.size() == 2);
}

TEST_CASE("bad paths, kinds and ids are refused", "[state]")
{
	CHECK(!StateStore::open("relative/dir"));
	r3test::TempDir dir;
	auto s = StateStore::open(dir / "state");
	REQUIRE(s);
	CHECK(!(*s)->save("../etc", "1", {}));
	CHECK(!(*s)->save("mounts", "../1", {}));
	CHECK(!(*s)->remove("mounts", "a"));
}

TEST_CASE("a store on no directory keeps nothing", "[state]")
{
	auto s = StateStore::open("");
	REQUIRE(s);
	CHECK(!(*s)->persistent());
	REQUIRE((*s)->setNextId("mounts", 9));
	REQUIRE((*s)->save("mounts", "1", {}));
	CHECK((*s)->nextId("mounts") == 1);
	CHECK((*s)->load("mounts").empty());
}
