#include "mount/managed_options.hpp"

#include <string>

#include <catch2/catch.hpp>

using namespace r3d;
using namespace r3d::mount;
using namespace std::chrono_literals;

namespace {

std::string refusal(std::string_view key, std::string_view value)
{
	ManagedOptions o;
	auto r = setManagedOption(o, key, value);
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() != 0);
	return r.error().message;
}

bool contains(const std::string &text, const std::string &part)
{
	return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("every key is taken in its text form", "[managed_options]")
{
	ManagedOptions o;
	REQUIRE(setManagedOption(o, "cache", "/var/cache/r3"));
	REQUIRE(setManagedOption(o, "chunk-size", "256K"));
	REQUIRE(setManagedOption(o, "pull-workers", "3"));
	REQUIRE(setManagedOption(o, "push-interval", "250ms"));
	REQUIRE(setManagedOption(o, "order", "reverse"));
	REQUIRE(setManagedOption(o, "pull-first", "25%"));
	REQUIRE(setManagedOption(o, "pull-rate", "10M"));
	REQUIRE(setManagedOption(o, "push-rate", "1M"));
	REQUIRE(setManagedOption(o, "remote-timeout", "2s"));
	REQUIRE(setManagedOption(o, "background", "no"));
	REQUIRE(setManagedOption(o, "discard-local", "true"));
	CHECK(o.cache == "/var/cache/r3");
	CHECK(o.chunk == 256 * 1024);
	CHECK(o.pullWorkers == 3);
	CHECK(o.pushInterval == 250ms);
	CHECK(o.order == stages::PullOrder::Reverse);
	CHECK(o.pullFirstPercent == 25);
	CHECK(o.pullFirstBytes == 0);
	CHECK(o.pullRate == 10u << 20);
	CHECK(o.pushRate == 1u << 20);
	CHECK(o.remoteTimeout == 2s);
	CHECK_FALSE(o.background);
	CHECK(o.discardLocal);

	REQUIRE(setManagedOption(o, "pull-first", "64M")); // a size replaces the percentage
	CHECK(o.pullFirstBytes == 64u << 20);
	CHECK(o.pullFirstPercent == 0);
	REQUIRE(setManagedOption(o, "order", "hot:/tmp/hot.list"));
	CHECK(o.order == stages::PullOrder::Hot);
	CHECK(o.hotFile == "/tmp/hot.list");
	REQUIRE(setManagedOption(o, "order", "linear"));
	CHECK(o.order == stages::PullOrder::Linear);
	CHECK(managedOptionKeys().size() == 11);
}

TEST_CASE("bad values are refused with a message naming the key", "[managed_options]")
{
	CHECK(contains(refusal("chunk-size", "100K"), "chunk-size"));     // not a power of two
	CHECK(contains(refusal("chunk-size", "256"), "chunk-size"));      // below the minimum
	CHECK(contains(refusal("chunk-size", "1G"), "chunk-size"));       // above the maximum
	CHECK(contains(refusal("chunk-size", "lots"), "chunk-size"));
	CHECK(contains(refusal("pull-workers", "0"), "pull-workers"));
	CHECK(contains(refusal("pull-workers", "257"), "pull-workers"));
	CHECK(contains(refusal("pull-workers", "4x"), "pull-workers"));
	CHECK(contains(refusal("push-interval", "5ms"), "push-interval")); // below 10ms
	CHECK(contains(refusal("push-interval", "2d"), "push-interval"));
	CHECK(contains(refusal("remote-timeout", "soon"), "remote-timeout"));
	CHECK(contains(refusal("order", "random"), "order"));
	CHECK(contains(refusal("order", "hot:"), "order"));
	CHECK(contains(refusal("pull-first", "101%"), "pull-first"));
	CHECK(contains(refusal("pull-first", "x%"), "pull-first"));
	CHECK(contains(refusal("pull-first", "big"), "pull-first"));
	CHECK(contains(refusal("pull-rate", "fast"), "pull-rate"));
	CHECK(contains(refusal("background", "maybe"), "background"));
	CHECK(contains(refusal("discard-local", "2"), "discard-local"));
	CHECK(contains(refusal("colour", "red"), "unknown managed option 'colour'"));
	CHECK(contains(refusal("cache", std::string(2000, 'd')), "too long"));
}
