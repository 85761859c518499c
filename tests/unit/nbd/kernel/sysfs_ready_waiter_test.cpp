#include <thread>

#include <sys/eventfd.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "fake_sysfs.hpp"
#include "nbd/kernel/sysfs_ready_waiter.hpp"

using namespace r3d::nbd::kernel;
using namespace std::chrono_literals;

TEST_CASE("sysfs readiness returns once the device has a size", "[ready]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(3);
	SysfsDevices devices(fake.sys(), fake.dev());
	SysfsReadyWaiter waiter(devices);
	std::thread connect([&] {
		std::this_thread::sleep_for(30ms);
		fake.setSize(3, 2048);
	});
	auto r = waiter.wait(3, ReadyWaiter::Clock::now() + 10s, -1);
	connect.join();
	CHECK(r);
}

TEST_CASE("sysfs readiness gives up at the deadline", "[ready]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0);
	SysfsDevices devices(fake.sys(), fake.dev());
	auto start = ReadyWaiter::Clock::now();
	auto r = SysfsReadyWaiter(devices).wait(0, start + 50ms, -1);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == ETIMEDOUT);
	CHECK(ReadyWaiter::Clock::now() - start < 5s);
}

TEST_CASE("sysfs readiness stops when the abort fd fires", "[ready]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0);
	SysfsDevices devices(fake.sys(), fake.dev());
	int abort = ::eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;
	REQUIRE(::write(abort, &one, sizeof(one)) == sizeof(one));
	auto r = SysfsReadyWaiter(devices).wait(0, ReadyWaiter::Clock::now() + 10s, abort);
	::close(abort);
	REQUIRE_FALSE(r);
	CHECK(r.error().value() == ECANCELED);
}
