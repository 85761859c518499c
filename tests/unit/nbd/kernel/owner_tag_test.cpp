#include <filesystem>
#include <fstream>

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "nbd/kernel/owner_tag.hpp"
#include "test_support.hpp"

using r3d::nbd::kernel::OwnerTag;

TEST_CASE("an owner tag survives formatting and parsing, names with colons included", "[owner]")
{
	OwnerTag tag{ 1234, 98765, 4026531836, "file:/srv/a:b.img" };
	auto text = tag.format();
	CHECK(text == "r3map:1234:98765:4026531836:file:/srv/a:b.img");
	auto back = OwnerTag::parse(text);
	REQUIRE(back);
	CHECK(back->pid == 1234);
	CHECK(back->startTime == 98765);
	CHECK(back->pidNamespace == 4026531836);
	CHECK(back->name == "file:/srv/a:b.img");
}

TEST_CASE("identifiers of other tools are not owner tags", "[owner]")
{
	CHECK_FALSE(OwnerTag::parse(""));
	CHECK_FALSE(OwnerTag::parse("nbd-client"));
	CHECK_FALSE(OwnerTag::parse("r3map:"));
	CHECK_FALSE(OwnerTag::parse("r3map:12:34"));
	CHECK_FALSE(OwnerTag::parse("r3map:x:1:2:n"));
	CHECK_FALSE(OwnerTag::parse("r3map:0:1:2:n"));
	CHECK_FALSE(OwnerTag::parse("r3map:-5:1:2:n"));
}

TEST_CASE("this process is alive, a reaped child is not", "[owner]")
{
	auto self = OwnerTag::self("test");
	CHECK(self.pid == ::getpid());
	CHECK(self.startTime > 0);
	CHECK(self.pidNamespace > 0);
	CHECK(self.alive());

	pid_t child = ::fork();
	REQUIRE(child >= 0);
	if (child == 0)
		::_exit(0);
	auto start = OwnerTag::startTimeOf(child);
	::waitpid(child, nullptr, 0);
	OwnerTag dead{ child, start.value_or(1), self.pidNamespace, "gone" };
	CHECK_FALSE(dead.alive());
}

TEST_CASE("a reused pid with another start time is not the owner", "[owner]")
{
	auto self = OwnerTag::self("test");
	OwnerTag impostor = self;
	impostor.startTime += 1;
	CHECK_FALSE(impostor.alive());
}

TEST_CASE("a tag from another PID namespace is never declared dead", "[owner]")
{
	auto self = OwnerTag::self("test");
	OwnerTag foreign{ 999999, 1, self.pidNamespace + 1, "elsewhere" };
	CHECK(foreign.alive());
}

TEST_CASE("start time is read past a command name with spaces and parentheses", "[owner]")
{
	r3test::TempDir proc;
	std::filesystem::create_directories(proc.path() / "42");
	std::ofstream(proc / "42/stat") << "42 (evil) name )) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
					  "777 1000 10 18446744073709551615\n";
	CHECK(OwnerTag::startTimeOf(42, proc.path().string()) == 777u);
	CHECK_FALSE(OwnerTag::startTimeOf(43, proc.path().string()));
}
