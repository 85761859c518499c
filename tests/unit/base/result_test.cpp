#include <r3d/result.hpp>

#include <memory>

#include <catch2/catch.hpp>

using namespace r3d;

namespace {

Result<int> half(int v)
{
	if (v % 2)
		return unexpected(EINVAL);
	return v / 2;
}

Result<int> quarter(int v)
{
	auto h = half(v);
	if (!h)
		return unexpected(h.error());
	return half(*h);
}

Result<void> check(bool ok)
{
	if (!ok)
		return unexpected(EIO);
	return {};
}

Result<void> chain(bool first, bool second)
{
	R3D_TRY(check(first));
	R3D_TRY(check(second));
	return {};
}

} // namespace

TEST_CASE("Result carries a value or an errno", "[result]")
{
	auto ok = half(8);
	REQUIRE(ok.has_value());
	CHECK(*ok == 4);
	auto bad = half(3);
	REQUIRE_FALSE(bad);
	CHECK(bad.error() == std::errc::invalid_argument);
	CHECK(bad.value_or(-1) == -1);
	CHECK(quarter(8).value() == 2);
	CHECK(quarter(6).error().value() == EINVAL);
}

TEST_CASE("Result<void> and R3D_TRY propagate the first error", "[result]")
{
	CHECK(chain(true, true).has_value());
	auto r = chain(true, false);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == EIO);
	CHECK(r.error().category() == std::system_category());
}

TEST_CASE("Result holds move-only values", "[result]")
{
	Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
	REQUIRE(r);
	auto p = std::move(r).value();
	CHECK(*p == 7);
}

TEST_CASE("ResultMsg carries a message for the user", "[result]")
{
	ResultMsg<int> r = fail(ENOENT, "no such thing");
	REQUIRE_FALSE(r);
	CHECK(r.error().message == "no such thing");
	CHECK(r.error().code.value() == ENOENT);
}
