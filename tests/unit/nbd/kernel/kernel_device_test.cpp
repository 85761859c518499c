#include <chrono>

#include <sys/socket.h>
#include <sys/sysmacros.h>

#include <catch2/catch.hpp>

#include "fake_sysfs.hpp"
#include "mount/direct_mount.hpp"
#include "nbd/kernel/kernel_device.hpp"
#include "nbd/protocol.hpp"

using namespace r3d::nbd::kernel;
using namespace std::chrono_literals;

namespace {

std::vector<r3d::UniqueFd> socketPairs(int n)
{
	std::vector<r3d::UniqueFd> kernelEnds;
	for (int i = 0; i < n; ++i) {
		int pair[2];
		REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
		kernelEnds.emplace_back(pair[0]);
		::close(pair[1]);
	}
	return kernelEnds;
}

r3d::Error attachError(AttachOptions options, int sockets = 1)
{
	auto device = KernelDevice::attach(socketPairs(sockets), options);
	REQUIRE_FALSE(device);
	return device.error();
}

} // namespace

TEST_CASE("attach rejects what the kernel would refuse, before touching it", "[kernel]")
{
	r3test::FakeSysfs fake;
	fake.loadModule();
	AttachOptions o;
	o.sysRoot = fake.sys();
	o.devRoot = fake.dev();
	o.sizeBytes = 64 << 20;

	SECTION("block size not a power of two")
	{
		o.blockSize = 1000;
		CHECK(attachError(o).code.value() == EINVAL);
	}
	SECTION("block size above the page size")
	{
		o.blockSize = 1 << 20;
		CHECK(attachError(o).message.find("block size") != std::string::npos);
	}
	SECTION("size not a multiple of the block size")
	{
		o.sizeBytes = 4096 * 10 + 512;
		CHECK(attachError(o).message.find("multiple") != std::string::npos);
	}
	SECTION("empty export")
	{
		o.sizeBytes = 0;
		CHECK(attachError(o).code.value() == EINVAL);
	}
	SECTION("several connections to a server without multi-conn")
	{
		o.transmissionFlags = r3d::nbd::kFlagHasFlags;
		CHECK(attachError(o, 2).message.find("multi-conn") != std::string::npos);
	}
}

TEST_CASE("attach without the nbd driver fails at once with a hint", "[kernel]")
{
	r3test::FakeSysfs fake; // no module directory, no devices
	AttachOptions o;
	o.sysRoot = fake.sys();
	o.devRoot = fake.dev();
	o.sizeBytes = 1 << 20;
	auto start = std::chrono::steady_clock::now();
	auto error = attachError(o);
	CHECK(error.code.value() == ENODEV);
	CHECK(error.message.find("modprobe nbd") != std::string::npos);
	CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("ioctl attach with every device taken fails instead of waiting", "[kernel]")
{
	r3test::FakeSysfs fake;
	fake.addDevice(0, 8, 1);
	fake.addDevice(1, 8, 1);
	AttachOptions o;
	o.sysRoot = fake.sys();
	o.devRoot = fake.dev();
	o.sizeBytes = 1 << 20;
	o.method = AttachMethod::Ioctl;
	CHECK(attachError(o).code.value() == EBUSY);
}

TEST_CASE("a direct mount that cannot attach returns an error and stops its server", "[kernel][mount]")
{
	r3d::mount::DirectMountOptions o;
	SECTION("not an nbd device")
	{
		o.device = "/dev/sda";
		auto m = r3d::mount::DirectMount::open("memory:16M", o);
		REQUIRE_FALSE(m);
		CHECK(m.error().code.value() == EINVAL);
	}
	SECTION("no connections")
	{
		o.connections = 0;
		CHECK_FALSE(r3d::mount::DirectMount::open("memory:16M", o));
	}
	SECTION("bad backend")
	{
		CHECK_FALSE(r3d::mount::DirectMount::open("memory:0", o));
	}
	SECTION("size not a multiple of the block size")
	{
		o.attach.blockSize = 4096;
		auto m = r3d::mount::DirectMount::open("memory:6K", o);
		REQUIRE_FALSE(m);
		CHECK(m.error().message.find("multiple") != std::string::npos);
	}
}

TEST_CASE("the mounts of a device are found in mountinfo by major:minor, names unescaped", "[kernel]")
{
	const std::string mountinfo = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
				      "40 22 43:0 / /mnt/a rw,relatime shared:20 - ext4 /dev/nbd0 rw\n"
				      "41 22 43:32 / /mnt/other rw,relatime shared:21 - ext4 /dev/nbd1 rw\n"
				      "42 22 43:0 /sub /srv/with\\040space\\011tab rw shared:22 - ext4 /dev/nbd0 rw\n"
				      "43 22 143:0 / /mnt/not-43-0 rw - ext4 /dev/x rw\n"
				      "44 22 43:0 / /back\\134slash\\04 rw - ext4 /dev/nbd0 rw\n"
				      "garbage\n";
	CHECK(KernelDevice::mountpointsIn(mountinfo, makedev(43, 0))
	      == std::vector<std::string>{ "/mnt/a", "/srv/with space\ttab", "/back\\slash\\04" });
	CHECK(KernelDevice::mountpointsIn(mountinfo, makedev(43, 32)) == std::vector<std::string>{ "/mnt/other" });
	CHECK(KernelDevice::mountpointsIn(mountinfo, makedev(43, 64)).empty());
	CHECK(KernelDevice::mountpointsIn("", makedev(43, 0)).empty());
}
