// Guest-side check of the netlink commands r3serve itself does not use on a live device:
// STATUS (all devices and one) and RECONFIGURE (timeouts), verified through sysfs, and the
// clean-up of a device connected by a CONNECT whose reply was lost.
//   nbd_netlink_check INDEX FREE_INDEX      checks on INDEX (connected) and FREE_INDEX (not)
//   nbd_netlink_check --disconnect INDEX    disconnects INDEX as an administrator would
// Exit 0 when everything holds.

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <r3d/unique_fd.hpp>

#include "nbd/kernel/kernel_device.hpp"
#include "nbd/kernel/nbd_netlink.hpp"
#include "nbd/kernel/sysfs_devices.hpp"

using namespace r3d::nbd::kernel;

namespace {

int failures = 0;

void check(bool ok, const std::string &what)
{
	std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
	if (!ok)
		++failures;
}

std::string sysfs(unsigned index, const std::string &attribute)
{
	std::ifstream in("/sys/block/nbd" + std::to_string(index) + "/" + attribute);
	std::string line;
	std::getline(in, line);
	return line;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: nbd_netlink_check INDEX FREE_INDEX | --disconnect INDEX\n");
		return 2;
	}
	if (std::string(argv[1]) == "--disconnect") {
		auto netlink = NbdNetlink::open();
		auto done = netlink ? netlink->disconnect(static_cast<unsigned>(std::stoul(argv[2]))) : r3d::ResultMsg<void>();
		if (!netlink || !done) {
			std::fprintf(stderr, "%s\n", (netlink ? done.error() : netlink.error()).message.c_str());
			return 1;
		}
		return 0;
	}
	unsigned index = static_cast<unsigned>(std::stoul(argv[1]));
	unsigned freeIndex = static_cast<unsigned>(std::stoul(argv[2]));
	auto netlink = NbdNetlink::open();
	if (!netlink) {
		std::fprintf(stderr, "%s\n", netlink.error().message.c_str());
		return 1;
	}

	auto all = netlink->status();
	check(all.has_value(), "STATUS of all devices");
	if (all) {
		bool seen = false, freeSeen = false;
		for (const auto &d : *all) {
			if (d.index == index)
				seen = d.connected;
			if (d.index == freeIndex)
				freeSeen = !d.connected;
		}
		check(seen, "STATUS lists the attached device as connected");
		check(freeSeen, "STATUS lists the free device as not connected");
	}
	auto one = netlink->status(index);
	check(one && one->size() == 1 && (*one)[0].index == index, "STATUS of one device");

	ReconfigureRequest request;
	request.index = index;
	request.timeoutSeconds = 7;
	request.deadConnTimeoutSeconds = 9;
	request.backendIdentifier = "someone-else";
	auto foreign = netlink->reconfigure(request);
	check(!foreign && foreign.error().code.value() == EINVAL, "RECONFIGURE for another backend is refused");

	request.backendIdentifier = sysfs(index, "backend");
	auto reconfigured = netlink->reconfigure(request);
	check(reconfigured.has_value(),
	      "RECONFIGURE of the timeouts" + (reconfigured ? std::string() : ": " + reconfigured.error().message));
	auto timeout = sysfs(index, "queue/io_timeout");
	check(timeout == "7000", "the new request timeout shows in queue/io_timeout: " + timeout);

	request.index = freeIndex;
	auto refused = netlink->reconfigure(request);
	check(!refused && refused.error().code.value() == EINVAL, "RECONFIGURE of an unconfigured device is refused");

	// A CONNECT whose reply is lost (sent with a 0 ms reply timeout, the one way to lose it
	// on demand): the kernel connects the device all the same; disconnectLost finds it by
	// its identifier and frees it.
	int sv[2];
	if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		check(false, "socketpair");
		return 1;
	}
	r3d::UniqueFd ours(sv[0]), peer(sv[1]);
	ConnectRequest lost;
	lost.index = freeIndex;
	lost.sockets = { ours.get() };
	lost.sizeBytes = 1 << 20;
	lost.timeoutSeconds = 5;
	lost.backendIdentifier = "r3map-lost-reply-check#" + std::to_string(::getpid());
	auto sent = netlink->withTimeout(std::chrono::milliseconds(0)).connect(lost);
	check(!sent && sent.error().code.value() == ETIMEDOUT, "a CONNECT whose reply is not waited for is ETIMEDOUT");
	check(sysfs(freeIndex, "backend") == lost.backendIdentifier, "the kernel connected the device all the same");
	auto freed = KernelDevice::disconnectLost(*netlink, SysfsDevices(), lost.backendIdentifier);
	check(freed == std::vector<unsigned>{ freeIndex }, "disconnectLost disconnected it");
	SysfsDevices devices;
	for (int i = 0; i < 500 && devices.pid(freeIndex); ++i)
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	check(!devices.pid(freeIndex), "the device is not connected any more");
	return failures ? 1 : 0;
}
