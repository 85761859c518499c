#include <filesystem>

#include <catch2/catch.hpp>

#include "fake_sysfs.hpp"
#include "nbd/kernel/sysfs_devices.hpp"

using r3d::nbd::kernel::SysfsDevices;

TEST_CASE("sysfs scan lists nbd disks by number with their state", "[sysfs]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(10);
	fake.addDevice(0);
	fake.addDevice(1, 131072, 4242, "r3map:4242:1:2:memory:64M");
	fake.addDevice(2, 0);
	std::filesystem::create_directories(fake.sys() + "/block/loop0");
	std::filesystem::create_directories(fake.sys() + "/block/nbdx");
	SysfsDevices devices(fake.sys(), fake.dev());

	auto all = devices.list();
	REQUIRE(all.size() == 4);
	CHECK(all[0].index == 0);
	CHECK(all[1].index == 1);
	CHECK(all[2].index == 2);
	CHECK(all[3].index == 10); // numeric, not lexical, order
	CHECK(all[0].looksFree());
	CHECK_FALSE(all[1].looksFree());
	CHECK(all[1].pid == 4242);
	CHECK(all[1].sizeSectors == 131072);
	CHECK(all[1].backend == "r3map:4242:1:2:memory:64M");
	CHECK(all[2].backend.empty());
	CHECK(devices.devicePath(10) == fake.dev() + "/nbd10");
	CHECK_FALSE(devices.state(7));
}

TEST_CASE("a device with a size but no pid is not free", "[sysfs]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0, 8);
	SysfsDevices devices(fake.sys(), fake.dev());
	CHECK_FALSE(devices.state(0)->looksFree());
	fake.disconnect(0);
	CHECK(devices.state(0)->looksFree());
}

TEST_CASE("sizes beyond 32 bits are read whole", "[sysfs]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0, 1ull << 40, 1);
	SysfsDevices devices(fake.sys(), fake.dev());
	CHECK(devices.state(0)->sizeSectors == (1ull << 40));
}

TEST_CASE("the driver counts as present with its module directory or any device", "[sysfs]")
{
	r3test::FakeSysfs fake;
	SysfsDevices devices(fake.sys(), fake.dev());
	CHECK_FALSE(devices.driverPresent());
	fake.loadModule();
	CHECK(devices.driverPresent());
}

TEST_CASE("device names parse in their usual spellings", "[sysfs]")
{
	CHECK(SysfsDevices::parseDevice("/dev/nbd3") == 3u);
	CHECK(SysfsDevices::parseDevice("nbd12") == 12u);
	CHECK(SysfsDevices::parseDevice("7") == 7u);
	CHECK_FALSE(SysfsDevices::parseDevice("/dev/nbd"));
	CHECK_FALSE(SysfsDevices::parseDevice("/dev/nbd1p1"));
	CHECK_FALSE(SysfsDevices::parseDevice("/dev/sda"));
	CHECK_FALSE(SysfsDevices::parseDevice("nbd-1"));
	CHECK_FALSE(SysfsDevices::parseDevice(""));
}
