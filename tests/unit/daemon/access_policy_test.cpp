#include "access_policy.hpp"

#include <atomic>
#include <map>

#include <grp.h>
#include <pwd.h>

#include <catch2/catch.hpp>

#include "errors.hpp"

using r3mapd::AccessPolicy;
using r3mapd::Caller;

namespace {

Caller caller(uid_t uid)
{
	Caller c;
	c.uid = uid;
	return c;
}

// A group database of our own, counting the questions.
struct Database {
	std::map<uid_t, std::vector<gid_t>> groups;
	std::atomic<int> lookups{ 0 };

	AccessPolicy::GroupLookup lookup()
	{
		return [this](uid_t uid) -> std::optional<std::vector<gid_t>> {
			++lookups;
			auto it = groups.find(uid);
			if (it == groups.end())
				return std::nullopt;
			return it->second;
		};
	}
};

} // namespace

TEST_CASE("root always passes; members pass by any group the database gives their uid", "[access]")
{
	Database db;
	db.groups = { { 1000, { 1000, 4242 } }, { 1001, { 4242 } }, { 1002, { 100, 27 } } };
	AccessPolicy p("4242", db.lookup());
	CHECK(p.check(caller(0), "Mount"));
	CHECK(db.lookups == 0);
	CHECK(p.check(caller(1000), "Mount"));
	CHECK(p.check(caller(1001), "Mount"));
	CHECK_FALSE(p.check(caller(1002), "Mount"));
	CHECK_FALSE(p.check(caller(1003), "Mount")); // no user entry
}

TEST_CASE("others are refused with NotPermitted naming the uid, the action, the group and the fix", "[access]")
{
	Database db;
	db.groups = { { 65534, { 65534, 100 } } };
	AccessPolicy p("4242", db.lookup());
	auto r = p.check(caller(65534), "Mount memory:1M");
	REQUIRE_FALSE(r);
	CHECK(r.error().code == r3mapd::Errc::NotPermitted);
	CHECK(r.error().message == "uid 65534 may not Mount memory:1M: only root and members of group '4242' may "
				   "(membership is read from the group database: usermod -aG 4242 USER)");
}

TEST_CASE("the database's answer is kept for a while per uid, then asked again", "[access]")
{
	Database db;
	db.groups = { { 1000, { 4242 } } };
	AccessPolicy cached("4242", db.lookup(), std::chrono::hours(1));
	CHECK(cached.check(caller(1000), "x"));
	db.groups.clear(); // removed from the group: not seen while the answer is kept
	CHECK(cached.check(caller(1000), "x"));
	CHECK(db.lookups == 1);
	CHECK_FALSE(cached.check(caller(1001), "x"));
	CHECK(db.lookups == 2);

	Database fresh;
	fresh.groups = { { 1000, { 4242 } } };
	AccessPolicy uncached("4242", fresh.lookup(), std::chrono::seconds(0));
	CHECK(uncached.check(caller(1000), "x"));
	fresh.groups.clear();
	CHECK_FALSE(uncached.check(caller(1000), "x"));
	CHECK(fresh.lookups == 2);
}

TEST_CASE("the system's database: a user's primary group and its group list count", "[access]")
{
	auto rootGroups = AccessPolicy::systemGroups(0);
	REQUIRE(rootGroups);
	CHECK(std::find(rootGroups->begin(), rootGroups->end(), 0) != rootGroups->end());
	// A uid nobody has: no entry, no groups.
	CHECK_FALSE(AccessPolicy::systemGroups(static_cast<uid_t>(-2)));

	// Every user is a member of its primary group, by name or by number.
	struct passwd *nobody = ::getpwnam("nobody");
	REQUIRE(nobody != nullptr);
	CHECK(AccessPolicy(std::to_string(nobody->pw_gid)).check(caller(nobody->pw_uid), "x"));
	struct group *primary = ::getgrgid(nobody->pw_gid);
	REQUIRE(primary != nullptr);
	CHECK(AccessPolicy(primary->gr_name).check(caller(nobody->pw_uid), "x"));
	// root's group is not nobody's.
	CHECK_FALSE(AccessPolicy("0").check(caller(nobody->pw_uid), "x"));
}

TEST_CASE("a group name is looked up; an unknown one admits root only", "[access]")
{
	Database db;
	db.groups = { { 1000, { 0, 1000 } } };
	// gid 0 is "root" on every Linux system.
	struct group *root = ::getgrgid(0);
	REQUIRE(root != nullptr);
	AccessPolicy byName(root->gr_name, db.lookup());
	CHECK(byName.check(caller(1000), "x"));

	AccessPolicy unknown("r3map-test-no-such-group", db.lookup());
	CHECK(unknown.check(caller(0), "x"));
	CHECK_FALSE(unknown.check(caller(1000), "x"));
}
