#include <r3d/size.hpp>

#include <catch2/catch.hpp>

using r3d::formatSize;
using r3d::parseSize;

TEST_CASE("parseSize understands plain numbers and binary suffixes", "[size]")
{
	CHECK(parseSize("4096").value() == 4096);
	CHECK(parseSize("64K").value() == 64 * 1024);
	CHECK(parseSize("64k").value() == 64 * 1024);
	CHECK(parseSize("256M").value() == 256ull << 20);
	CHECK(parseSize("256MiB").value() == 256ull << 20);
	CHECK(parseSize("1G").value() == 1ull << 30);
	CHECK(parseSize("2T").value() == 2ull << 40);
	CHECK(parseSize("0").value() == 0);
}

TEST_CASE("parseSize names what is wrong", "[size]")
{
	auto empty = parseSize("");
	REQUIRE_FALSE(empty);
	CHECK(empty.error().message == "size is empty");

	auto word = parseSize("big");
	REQUIRE_FALSE(word);
	CHECK_THAT(word.error().message, Catch::Contains("does not start with a number"));

	auto suffix = parseSize("12X");
	REQUIRE_FALSE(suffix);
	CHECK_THAT(suffix.error().message, Catch::Contains("unknown suffix 'X'"));

	auto overflow = parseSize("99999999999999999999");
	REQUIRE_FALSE(overflow);
	CHECK_THAT(overflow.error().message, Catch::Contains("does not fit in 64 bits"));

	auto shifted = parseSize("20000000P");
	REQUIRE_FALSE(shifted);
	CHECK(shifted.error().code.value() == ERANGE);
}

TEST_CASE("formatSize prints exact binary units", "[size]")
{
	CHECK(formatSize(512) == "512 B");
	CHECK(formatSize(64 * 1024) == "64 KiB");
	CHECK(formatSize(256ull << 20) == "256 MiB");
	CHECK(formatSize(1536ull << 20) == "1.5 GiB");
}
