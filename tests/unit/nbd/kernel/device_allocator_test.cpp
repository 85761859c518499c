#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "fake_sysfs.hpp"
#include "nbd/kernel/device_allocator.hpp"

using namespace r3d::nbd::kernel;

TEST_CASE("the allocator locks the lowest free device and skips taken ones", "[allocator]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0, 64, 99);
	fake.addDevice(1);
	fake.addDevice(2);
	SysfsDevices devices(fake.sys(), fake.dev());
	DeviceAllocator allocator(devices);

	auto first = allocator.lockFree();
	REQUIRE(first);
	CHECK(first->index == 1);
	auto second = allocator.lockFree(); // 1 is locked by `first`, even within one process
	REQUIRE(second);
	CHECK(second->index == 2);
	auto none = allocator.lockFree();
	REQUIRE_FALSE(none);
	CHECK(none.error().code.value() == EBUSY);
}

TEST_CASE("the allocator honours the skip list and explicit indexes", "[allocator]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0);
	fake.addDevice(1);
	fake.addDevice(2, 8, 5);
	SysfsDevices devices(fake.sys(), fake.dev());
	DeviceAllocator allocator(devices);

	auto skipped = allocator.lockFree({ 0 });
	REQUIRE(skipped);
	CHECK(skipped->index == 1);

	auto connected = allocator.lock(2);
	REQUIRE_FALSE(connected);
	CHECK(connected.error().code.value() == EBUSY);
	auto missing = allocator.lock(9);
	REQUIRE_FALSE(missing);
	CHECK(missing.error().code.value() == ENODEV);
	auto held = allocator.lock(1);
	REQUIRE_FALSE(held);
	CHECK(held.error().code.value() == EBUSY);
	CHECK(held.error().message.find("another process") != std::string::npos);
}

TEST_CASE("no devices at all means the driver is missing", "[allocator]")
{
	r3test::FakeSysfs fake;
	SysfsDevices devices(fake.sys(), fake.dev());
	auto r = DeviceAllocator(devices).lockFree();
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == ENODEV);
}

TEST_CASE("a lock released with its holder makes the device available again", "[allocator]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0);
	SysfsDevices devices(fake.sys(), fake.dev());
	DeviceAllocator allocator(devices);
	{
		auto held = allocator.lockFree();
		REQUIRE(held);
		CHECK_FALSE(allocator.lockFree());
	}
	CHECK(allocator.lockFree());
}

TEST_CASE("concurrent threads each get a distinct device", "[allocator]")
{
	constexpr unsigned kDevices = 16, kThreads = 12;
	r3test::FakeSysfs fake;
	for (unsigned i = 0; i < kDevices; ++i)
		fake.addDevice(i);
	SysfsDevices devices(fake.sys(), fake.dev());

	for (int round = 0; round < 20; ++round) {
		std::mutex mutex;
		std::vector<LockedDevice> held;
		std::vector<std::thread> threads;
		for (unsigned t = 0; t < kThreads; ++t)
			threads.emplace_back([&] {
				auto locked = DeviceAllocator(devices).lockFree();
				std::lock_guard lock(mutex);
				if (locked)
					held.push_back(std::move(*locked));
			});
		for (auto &t : threads)
			t.join();
		REQUIRE(held.size() == kThreads);
		std::set<unsigned> indexes;
		for (const auto &h : held)
			indexes.insert(h.index);
		CHECK(indexes.size() == kThreads);
	}
}

TEST_CASE("concurrent processes each get a distinct device", "[allocator]")
{
	constexpr int kChildren = 6;
	r3test::FakeSysfs fake;
	for (unsigned i = 0; i < 8; ++i)
		fake.addDevice(i);
	SysfsDevices devices(fake.sys(), fake.dev());

	int results[2], release[2];
	REQUIRE(::pipe(results) == 0);
	REQUIRE(::pipe(release) == 0);
	std::vector<pid_t> children;
	for (int c = 0; c < kChildren; ++c) {
		pid_t pid = ::fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			::close(release[1]); // so the parent's close is our EOF
			auto locked = DeviceAllocator(devices).lockFree();
			int index = locked ? static_cast<int>(locked->index) : -1;
			(void)!::write(results[1], &index, sizeof(index));
			char byte;
			(void)!::read(release[0], &byte, 1); // hold the lock until the parent saw all
			::_exit(0);
		}
		children.push_back(pid);
	}
	std::set<int> indexes;
	for (int c = 0; c < kChildren; ++c) {
		int index = -1;
		REQUIRE(::read(results[0], &index, sizeof(index)) == sizeof(index));
		CHECK(index >= 0);
		indexes.insert(index);
	}
	CHECK(indexes.size() == kChildren);
	// Meanwhile the parent can lock only what the children left.
	auto mine = DeviceAllocator(devices).lockFree();
	REQUIRE(mine);
	CHECK(indexes.count(static_cast<int>(mine->index)) == 0);

	::close(release[1]);
	for (pid_t pid : children)
		::waitpid(pid, nullptr, 0);
	::close(release[0]);
	::close(results[0]);
	::close(results[1]);
}
