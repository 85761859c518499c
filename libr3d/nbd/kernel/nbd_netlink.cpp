#include "nbd/kernel/nbd_netlink.hpp"

#include <linux/nbd-netlink.h>
#include <linux/netlink.h>

#include <fmt/format.h>

#include "nbd/kernel/netlink_attribute.hpp"

namespace r3d::nbd::kernel {

namespace {

constexpr uint16_t kRequestFlags = NLM_F_REQUEST | NLM_F_ACK;

void putSockets(NetlinkMessage &message, const std::vector<int> &sockets)
{
	if (sockets.empty())
		return;
	size_t list = message.beginNested(NBD_ATTR_SOCKETS);
	for (int fd : sockets) {
		size_t item = message.beginNested(NBD_SOCK_ITEM);
		message.putU32(NBD_SOCK_FD, static_cast<uint32_t>(fd));
		message.endNested(item);
	}
	message.endNested(list);
}

std::string describe(const char *what, std::optional<uint32_t> index, const Error &error)
{
	std::string device = index ? fmt::format("nbd{}", *index) : std::string("an nbd device");
	switch (error.code.value()) {
	case EBUSY:
		return fmt::format("{} {}: the device is in use", what, device);
	case EPERM:
		return fmt::format("{} {}: needs CAP_SYS_ADMIN", what, device);
	default:
		return fmt::format("{} {}: {}", what, device, error.message);
	}
}

} // namespace

ResultMsg<NbdNetlink> NbdNetlink::open(std::chrono::milliseconds timeout)
{
	auto family = GenericNetlink::familyId(NBD_GENL_FAMILY_NAME, timeout);
	if (!family)
		return unexpectedOf(family.error());
	return NbdNetlink(*family, timeout);
}

NetlinkMessage NbdNetlink::buildConnect(uint16_t family, const ConnectRequest &request)
{
	NetlinkMessage message(family, NBD_CMD_CONNECT, NBD_GENL_VERSION, kRequestFlags);
	if (request.index)
		message.putU32(NBD_ATTR_INDEX, *request.index);
	message.putU64(NBD_ATTR_SIZE_BYTES, request.sizeBytes);
	message.putU64(NBD_ATTR_BLOCK_SIZE_BYTES, request.blockSize);
	message.putU64(NBD_ATTR_SERVER_FLAGS, request.serverFlags);
	if (request.timeoutSeconds)
		message.putU64(NBD_ATTR_TIMEOUT, request.timeoutSeconds);
	if (request.deadConnTimeoutSeconds)
		message.putU64(NBD_ATTR_DEAD_CONN_TIMEOUT, request.deadConnTimeoutSeconds);
	if (request.clientFlags)
		message.putU64(NBD_ATTR_CLIENT_FLAGS, request.clientFlags);
	if (!request.backendIdentifier.empty())
		message.putString(NBD_ATTR_BACKEND_IDENTIFIER, request.backendIdentifier);
	putSockets(message, request.sockets);
	return message;
}

NetlinkMessage NbdNetlink::buildDisconnect(uint16_t family, uint32_t index)
{
	NetlinkMessage message(family, NBD_CMD_DISCONNECT, NBD_GENL_VERSION, kRequestFlags);
	message.putU32(NBD_ATTR_INDEX, index);
	return message;
}

NetlinkMessage NbdNetlink::buildReconfigure(uint16_t family, const ReconfigureRequest &request)
{
	NetlinkMessage message(family, NBD_CMD_RECONFIGURE, NBD_GENL_VERSION, kRequestFlags);
	message.putU32(NBD_ATTR_INDEX, request.index);
	if (request.timeoutSeconds)
		message.putU64(NBD_ATTR_TIMEOUT, *request.timeoutSeconds);
	if (request.deadConnTimeoutSeconds)
		message.putU64(NBD_ATTR_DEAD_CONN_TIMEOUT, *request.deadConnTimeoutSeconds);
	if (request.clientFlags)
		message.putU64(NBD_ATTR_CLIENT_FLAGS, *request.clientFlags);
	if (!request.backendIdentifier.empty())
		message.putString(NBD_ATTR_BACKEND_IDENTIFIER, request.backendIdentifier);
	putSockets(message, request.sockets);
	return message;
}

NetlinkMessage NbdNetlink::buildStatus(uint16_t family, std::optional<uint32_t> index)
{
	NetlinkMessage message(family, NBD_CMD_STATUS, NBD_GENL_VERSION, kRequestFlags);
	if (index)
		message.putU32(NBD_ATTR_INDEX, *index);
	return message;
}

Result<uint32_t> NbdNetlink::parseConnectReply(const std::vector<GenlReply> &replies)
{
	for (const auto &reply : replies) {
		if (reply.command != NBD_CMD_CONNECT)
			continue;
		auto attributes = NetlinkAttribute::parseAll(reply.attributes);
		if (!attributes)
			return unexpected(attributes.error());
		if (auto *index = NetlinkAttribute::find(*attributes, NBD_ATTR_INDEX); index && index->u32())
			return *index->u32();
	}
	return unexpected(EPROTO);
}

Result<std::vector<DeviceStatus>> NbdNetlink::parseStatusReply(const std::vector<GenlReply> &replies)
{
	std::vector<DeviceStatus> out;
	for (const auto &reply : replies) {
		if (reply.command != NBD_CMD_STATUS)
			continue;
		auto attributes = NetlinkAttribute::parseAll(reply.attributes);
		if (!attributes)
			return unexpected(attributes.error());
		auto *list = NetlinkAttribute::find(*attributes, NBD_ATTR_DEVICE_LIST);
		if (!list)
			continue;
		auto items = list->nested();
		if (!items)
			return unexpected(items.error());
		for (const auto &item : *items) {
			if (item.type() != NBD_DEVICE_ITEM)
				continue;
			auto fields = item.nested();
			if (!fields)
				return unexpected(fields.error());
			auto *index = NetlinkAttribute::find(*fields, NBD_DEVICE_INDEX);
			auto *connected = NetlinkAttribute::find(*fields, NBD_DEVICE_CONNECTED);
			if (!index || !index->u32() || !connected || !connected->u8())
				return unexpected(EPROTO);
			out.push_back(DeviceStatus{ *index->u32(), *connected->u8() != 0 });
		}
	}
	return out;
}

ResultMsg<uint32_t> NbdNetlink::connect(const ConnectRequest &request) const
{
	auto message = buildConnect(family_, request);
	auto replies = GenericNetlink::transact(message, timeout_);
	if (!replies)
		return fail(replies.error().code, describe("connect", request.index, replies.error()));
	auto index = parseConnectReply(*replies);
	if (!index)
		return fail(index.error(), "connect: the kernel did not say which device it connected");
	return *index;
}

ResultMsg<void> NbdNetlink::disconnect(uint32_t index) const
{
	auto message = buildDisconnect(family_, index);
	auto replies = GenericNetlink::transact(message, timeout_);
	if (!replies)
		return fail(replies.error().code, describe("disconnect", index, replies.error()));
	return {};
}

ResultMsg<void> NbdNetlink::reconfigure(const ReconfigureRequest &request) const
{
	auto message = buildReconfigure(family_, request);
	auto replies = GenericNetlink::transact(message, timeout_);
	if (!replies)
		return fail(replies.error().code, describe("reconfigure", request.index, replies.error()));
	return {};
}

ResultMsg<std::vector<DeviceStatus>> NbdNetlink::status(std::optional<uint32_t> index) const
{
	auto message = buildStatus(family_, index);
	auto replies = GenericNetlink::transact(message, timeout_);
	if (!replies)
		return fail(replies.error().code, describe("status of", index, replies.error()));
	auto devices = parseStatusReply(*replies);
	if (!devices)
		return fail(devices.error(), "status: malformed device list from the kernel");
	return *devices;
}

} // namespace r3d::nbd::kernel
