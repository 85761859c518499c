#include "hook_command.hpp"

#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "test_support.hpp"

using r3mapd::HookCommand;
using namespace std::chrono_literals;

TEST_CASE("a hook runs as its caller and its exit status decides", "[hook]")
{
	r3test::TempDir dir;
	std::string out = dir / "uid";
	auto ok = HookCommand::create("id -u > '" + out + "'", ::getuid());
	REQUIRE(ok);
	REQUIRE(ok->run(10s));
	std::ifstream f(out);
	std::string uid;
	f >> uid;
	CHECK(uid == std::to_string(::getuid()));

	auto failing = HookCommand::create("exit 3", ::getuid());
	REQUIRE(failing);
	auto r = failing->run(10s);
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == ECANCELED);
	CHECK(r.error().message.find("exited with 3") != std::string::npos);

	auto killed = HookCommand::create("kill -KILL $$", ::getuid());
	REQUIRE(killed);
	r = killed->run(10s);
	REQUIRE_FALSE(r);
	CHECK(r.error().message.find("signal 9") != std::string::npos);
}

TEST_CASE("a hook that does not finish is killed at its timeout", "[hook]")
{
	auto slow = HookCommand::create("sleep 30", ::getuid());
	REQUIRE(slow);
	auto r = slow->run(200ms);
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == ETIMEDOUT);
}

TEST_CASE("bad hook commands and callers are refused", "[hook]")
{
	CHECK(HookCommand::create("", ::getuid()).error().code.value() == EINVAL);
	CHECK(HookCommand::create(std::string(4097, 'x'), ::getuid()).error().code.value() == EINVAL);
	CHECK(HookCommand::create(std::string("true\0rm", 7), ::getuid()).error().code.value() == EINVAL);
	// A uid with no passwd entry: nobody the hook could run as.
	CHECK(HookCommand::create("true", 3999999999u).error().code.value() == EPERM);
}
