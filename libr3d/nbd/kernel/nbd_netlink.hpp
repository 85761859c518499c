#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "nbd/kernel/generic_netlink.hpp"
#include "nbd/kernel/netlink_message.hpp"

namespace r3d::nbd::kernel {

/// NBD_CMD_CONNECT: everything the kernel needs to bring a device up.
struct ConnectRequest {
	std::optional<uint32_t> index; ///< nullopt: the kernel picks a free device (or makes one)
	std::vector<int> sockets;      ///< one per connection, in this process's fd table
	uint64_t sizeBytes = 0;
	uint64_t blockSize = 4096;
	uint64_t timeoutSeconds = 0;         ///< per request; 0 = never time out
	uint64_t deadConnTimeoutSeconds = 0; ///< how long I/O waits for a reconnect
	uint64_t serverFlags = 0;            ///< NBD transmission flags
	uint64_t clientFlags = 0;            ///< NBD_CFLAG_*
	std::string backendIdentifier;       ///< shown in /sys/block/nbdN/backend
};

/// NBD_CMD_RECONFIGURE: new sockets replace dead ones; other fields as given.
struct ReconfigureRequest {
	uint32_t index = 0;
	/// Must repeat the identifier the device was connected with, if it has one: the
	/// kernel refuses to reconfigure a device for another backend.
	std::string backendIdentifier;
	std::vector<int> sockets;
	std::optional<uint64_t> timeoutSeconds;
	std::optional<uint64_t> deadConnTimeoutSeconds;
	std::optional<uint64_t> clientFlags;
};

struct DeviceStatus {
	uint32_t index = 0;
	bool connected = false; ///< the kernel holds a configuration for it
};

/// The kernel's generic netlink family "nbd" (drivers/block/nbd.c, uapi nbd-netlink.h).
/// The family id is resolved once; every command then goes over a fresh socket.
class NbdNetlink
{
public:
	/// ENOENT when the family is absent: nbd.ko not loaded, or a kernel without it.
	static ResultMsg<NbdNetlink> open(std::chrono::milliseconds timeout = GenericNetlink::kDefaultTimeout);

	uint16_t familyId() const { return family_; }
	/// The same family with another reply timeout. 0 sends each command and does not wait
	/// for its reply: the reply is lost as far as the caller knows (the guest test of
	/// KernelDevice::disconnectLost makes that fault with it).
	NbdNetlink withTimeout(std::chrono::milliseconds timeout) const { return NbdNetlink(family_, timeout); }

	/// The index of the connected device.
	ResultMsg<uint32_t> connect(const ConnectRequest &request) const;
	/// Sends NBD_CMD_DISC to the server on every socket, then drops the configuration
	/// (the device becomes free once nobody has it open).
	ResultMsg<void> disconnect(uint32_t index) const;
	ResultMsg<void> reconfigure(const ReconfigureRequest &request) const;
	/// One device, or all when `index` is nullopt.
	ResultMsg<std::vector<DeviceStatus>> status(std::optional<uint32_t> index = std::nullopt) const;

	// Message codecs, public for the unit tests.
	static NetlinkMessage buildConnect(uint16_t family, const ConnectRequest &request);
	static NetlinkMessage buildDisconnect(uint16_t family, uint32_t index);
	static NetlinkMessage buildReconfigure(uint16_t family, const ReconfigureRequest &request);
	static NetlinkMessage buildStatus(uint16_t family, std::optional<uint32_t> index);
	static Result<uint32_t> parseConnectReply(const std::vector<GenlReply> &replies);
	static Result<std::vector<DeviceStatus>> parseStatusReply(const std::vector<GenlReply> &replies);

private:
	NbdNetlink(uint16_t family, std::chrono::milliseconds timeout) : family_(family), timeout_(timeout) {}

	uint16_t family_;
	std::chrono::milliseconds timeout_;
};

} // namespace r3d::nbd::kernel
