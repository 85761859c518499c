#include "access_policy.hpp"

#include <grp.h>

#include <catch2/catch.hpp>

#include "errors.hpp"

using r3mapd::AccessPolicy;
using r3mapd::Caller;

namespace {

Caller caller(uid_t uid, gid_t gid, std::vector<gid_t> groups = {})
{
	Caller c;
	c.uid = uid;
	c.gid = gid;
	c.groups = std::move(groups);
	return c;
}

} // namespace

TEST_CASE("root always passes; members pass by primary or supplementary group", "[access]")
{
	AccessPolicy p("4242");
	CHECK(p.check(caller(0, 0), "Mount"));
	CHECK(p.check(caller(1000, 4242), "Mount"));
	CHECK(p.check(caller(1000, 100, { 27, 4242 }), "Mount"));
}

TEST_CASE("others are refused with NotPermitted naming the uid, the action and the group", "[access]")
{
	AccessPolicy p("4242");
	auto r = p.check(caller(65534, 65534, { 100 }), "Mount memory:1M");
	REQUIRE_FALSE(r);
	CHECK(r.error().code == r3mapd::Errc::NotPermitted);
	CHECK(r.error().message == "uid 65534 may not Mount memory:1M: only root and members of group '4242' may");
}

TEST_CASE("a group name is looked up; an unknown one admits root only", "[access]")
{
	// gid 0 is "root" on every Linux system.
	struct group *root = ::getgrgid(0);
	REQUIRE(root != nullptr);
	AccessPolicy byName(root->gr_name);
	CHECK(byName.check(caller(1000, 1000, { 0 }), "x"));

	AccessPolicy unknown("r3map-test-no-such-group");
	CHECK(unknown.check(caller(0, 0), "x"));
	CHECK_FALSE(unknown.check(caller(1000, 1000, { 0, 1000 }), "x"));
}
