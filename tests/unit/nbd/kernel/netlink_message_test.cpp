#include <cstring>

#include <linux/genetlink.h>
#include <linux/nbd.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>

#include <catch2/catch.hpp>

#include "nbd/kernel/generic_netlink.hpp"
#include "nbd/kernel/nbd_netlink.hpp"
#include "nbd/kernel/netlink_attribute.hpp"
#include "nbd/kernel/netlink_message.hpp"

using namespace r3d::nbd::kernel;

namespace {

constexpr size_t kHeaders = NLMSG_HDRLEN + GENL_HDRLEN;

nlmsghdr headerOf(std::span<const std::byte> bytes)
{
	nlmsghdr h{};
	std::memcpy(&h, bytes.data(), sizeof(h));
	return h;
}

genlmsghdr genlOf(std::span<const std::byte> bytes)
{
	genlmsghdr g{};
	std::memcpy(&g, bytes.data() + NLMSG_HDRLEN, sizeof(g));
	return g;
}

std::vector<NetlinkAttribute> attributesOf(std::span<const std::byte> bytes)
{
	auto attributes = NetlinkAttribute::parseAll(bytes.subspan(kHeaders));
	REQUIRE(attributes);
	return *attributes;
}

// A datagram as the kernel would send it: our builder makes the same framing.
std::vector<std::byte> asReply(NetlinkMessage &message, uint32_t sequence)
{
	auto bytes = message.finish(sequence);
	return { bytes.begin(), bytes.end() };
}

std::vector<std::byte> ack(uint32_t sequence, int error, const std::string &text = {})
{
	std::vector<std::byte> out(NLMSG_HDRLEN + sizeof(nlmsgerr));
	nlmsghdr h{};
	h.nlmsg_type = NLMSG_ERROR;
	h.nlmsg_seq = sequence;
	nlmsgerr err{};
	err.error = -error;
	err.msg.nlmsg_len = NLMSG_HDRLEN; // the echoed request, capped
	if (!text.empty()) {
		h.nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
		size_t tlv = NLA_ALIGN(NLA_HDRLEN + text.size() + 1);
		out.resize(out.size() + tlv);
		nlattr nla{ static_cast<uint16_t>(NLA_HDRLEN + text.size() + 1), NLMSGERR_ATTR_MSG };
		std::memcpy(out.data() + NLMSG_HDRLEN + sizeof(nlmsgerr), &nla, sizeof(nla));
		std::memcpy(out.data() + NLMSG_HDRLEN + sizeof(nlmsgerr) + NLA_HDRLEN, text.c_str(), text.size() + 1);
	}
	h.nlmsg_len = static_cast<uint32_t>(out.size());
	std::memcpy(out.data(), &h, sizeof(h));
	std::memcpy(out.data() + NLMSG_HDRLEN, &err, sizeof(err));
	return out;
}

} // namespace

TEST_CASE("a CONNECT request carries every attribute the kernel reads", "[netlink]")
{
	ConnectRequest request;
	request.index = 3;
	request.sockets = { 7, 9 };
	request.sizeBytes = 256ull << 20;
	request.blockSize = 4096;
	request.timeoutSeconds = 30;
	request.deadConnTimeoutSeconds = 5;
	request.serverFlags = 0x1ed;
	request.clientFlags = NBD_CFLAG_DISCONNECT_ON_CLOSE;
	request.backendIdentifier = "r3map:1:2:3:memory:256M";
	auto message = NbdNetlink::buildConnect(0x42, request);
	auto bytes = message.finish(77);

	auto h = headerOf(bytes);
	CHECK(h.nlmsg_len == bytes.size());
	CHECK(h.nlmsg_len % 4 == 0);
	CHECK(h.nlmsg_type == 0x42);
	CHECK(h.nlmsg_seq == 77);
	CHECK(h.nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
	CHECK(genlOf(bytes).cmd == NBD_CMD_CONNECT);
	CHECK(genlOf(bytes).version == NBD_GENL_VERSION);

	auto attributes = attributesOf(bytes);
	auto u64 = [&](uint16_t type) { return NetlinkAttribute::find(attributes, type)->u64(); };
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_INDEX)->u32() == 3u);
	CHECK(u64(NBD_ATTR_SIZE_BYTES) == (256ull << 20));
	CHECK(u64(NBD_ATTR_BLOCK_SIZE_BYTES) == 4096u);
	CHECK(u64(NBD_ATTR_TIMEOUT) == 30u);
	CHECK(u64(NBD_ATTR_DEAD_CONN_TIMEOUT) == 5u);
	CHECK(u64(NBD_ATTR_SERVER_FLAGS) == 0x1edu);
	CHECK(u64(NBD_ATTR_CLIENT_FLAGS) == uint64_t(NBD_CFLAG_DISCONNECT_ON_CLOSE));
	auto *backend = NetlinkAttribute::find(attributes, NBD_ATTR_BACKEND_IDENTIFIER);
	REQUIRE(backend);
	CHECK(backend->string() == request.backendIdentifier);
	CHECK(backend->payload().back() == std::byte{ 0 }); // NUL-terminated for NLA_STRING

	auto *sockets = NetlinkAttribute::find(attributes, NBD_ATTR_SOCKETS);
	REQUIRE(sockets);
	auto items = sockets->nested();
	REQUIRE(items);
	REQUIRE(items->size() == 2);
	std::vector<uint32_t> fds;
	for (const auto &item : *items) {
		CHECK(item.type() == NBD_SOCK_ITEM);
		auto fields = item.nested();
		REQUIRE(fields);
		fds.push_back(*NetlinkAttribute::find(*fields, NBD_SOCK_FD)->u32());
	}
	CHECK(fds == std::vector<uint32_t>{ 7, 9 });
}

TEST_CASE("a CONNECT without index lets the kernel pick, and zero timeouts are left out", "[netlink]")
{
	ConnectRequest request;
	request.sockets = { 4 };
	request.sizeBytes = 1 << 20;
	auto message = NbdNetlink::buildConnect(1, request);
	auto attributes = attributesOf(message.finish(1));
	CHECK_FALSE(NetlinkAttribute::find(attributes, NBD_ATTR_INDEX));
	CHECK_FALSE(NetlinkAttribute::find(attributes, NBD_ATTR_TIMEOUT));
	CHECK_FALSE(NetlinkAttribute::find(attributes, NBD_ATTR_DEAD_CONN_TIMEOUT));
	CHECK_FALSE(NetlinkAttribute::find(attributes, NBD_ATTR_BACKEND_IDENTIFIER));
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_SIZE_BYTES));
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_SOCKETS));
}

TEST_CASE("DISCONNECT, STATUS and RECONFIGURE name their device", "[netlink]")
{
	auto disconnect = NbdNetlink::buildDisconnect(9, 5);
	auto bytes = disconnect.finish(1);
	CHECK(genlOf(bytes).cmd == NBD_CMD_DISCONNECT);
	CHECK(NetlinkAttribute::find(attributesOf(bytes), NBD_ATTR_INDEX)->u32() == 5u);

	auto all = NbdNetlink::buildStatus(9, std::nullopt);
	auto allBytes = all.finish(2);
	CHECK(genlOf(allBytes).cmd == NBD_CMD_STATUS);
	CHECK(attributesOf(allBytes).empty());

	ReconfigureRequest reconfigure;
	reconfigure.index = 2;
	reconfigure.sockets = { 11 };
	reconfigure.deadConnTimeoutSeconds = 60;
	reconfigure.backendIdentifier = "r3map:1:2:3:x";
	auto message = NbdNetlink::buildReconfigure(9, reconfigure);
	auto attributes = attributesOf(message.finish(3));
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_INDEX)->u32() == 2u);
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_DEAD_CONN_TIMEOUT)->u64() == 60u);
	CHECK_FALSE(NetlinkAttribute::find(attributes, NBD_ATTR_TIMEOUT));
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_BACKEND_IDENTIFIER)->string() == "r3map:1:2:3:x");
	CHECK(NetlinkAttribute::find(attributes, NBD_ATTR_SOCKETS));
}

TEST_CASE("a CONNECT reply and its ack are parsed; other sequence numbers are ignored", "[netlink]")
{
	NetlinkMessage reply(0x42, NBD_CMD_CONNECT, 1, 0);
	reply.putU32(NBD_ATTR_INDEX, 6);
	auto datagram = asReply(reply, 10);
	auto stray = ack(11, EBUSY);
	auto done = ack(10, 0);
	datagram.insert(datagram.end(), stray.begin(), stray.end());
	datagram.insert(datagram.end(), done.begin(), done.end());

	auto parsed = GenericNetlink::parseDatagram(datagram, 10);
	REQUIRE(parsed);
	CHECK(parsed->done);
	CHECK(parsed->error == 0);
	REQUIRE(parsed->replies.size() == 1);
	CHECK(NbdNetlink::parseConnectReply(parsed->replies).value_or(0) == 6u);
}

TEST_CASE("a kernel error keeps its errno and extended-ack text", "[netlink]")
{
	auto datagram = ack(5, EBUSY, "nbd0 already in use");
	auto parsed = GenericNetlink::parseDatagram(datagram, 5);
	REQUIRE(parsed);
	CHECK(parsed->done);
	CHECK(parsed->error == EBUSY);
	CHECK(parsed->errorText == "nbd0 already in use");
}

TEST_CASE("malformed replies are EPROTO, never a read past the buffer", "[netlink]")
{
	auto datagram = ack(1, 0);
	SECTION("message length beyond the datagram")
	{
		nlmsghdr h = headerOf(datagram);
		h.nlmsg_len = 4096;
		std::memcpy(datagram.data(), &h, sizeof(h));
		auto parsed = GenericNetlink::parseDatagram(datagram, 1);
		REQUIRE_FALSE(parsed);
		CHECK(parsed.error().value() == EPROTO);
	}
	SECTION("attribute length beyond its message")
	{
		std::vector<std::byte> bytes(8);
		nlattr nla{ 200, 1 };
		std::memcpy(bytes.data(), &nla, sizeof(nla));
		CHECK_FALSE(NetlinkAttribute::parseAll(bytes));
	}
	SECTION("scalar of the wrong size")
	{
		std::byte two[2]{};
		NetlinkAttribute a(1, two);
		CHECK_FALSE(a.u32());
		CHECK_FALSE(a.u64());
		CHECK(a.u16());
	}
	SECTION("a CONNECT reply without an index")
	{
		NetlinkMessage reply(0x42, NBD_CMD_CONNECT, 1, 0);
		auto bytes = asReply(reply, 1);
		auto parsed = GenericNetlink::parseDatagram(bytes, 1);
		REQUIRE(parsed);
		CHECK_FALSE(NbdNetlink::parseConnectReply(parsed->replies));
	}
}

TEST_CASE("a STATUS device list is parsed", "[netlink]")
{
	NetlinkMessage reply(0x42, NBD_CMD_STATUS, 1, 0);
	size_t list = reply.beginNested(NBD_ATTR_DEVICE_LIST);
	for (uint32_t i = 0; i < 3; ++i) {
		size_t item = reply.beginNested(NBD_DEVICE_ITEM);
		reply.putU32(NBD_DEVICE_INDEX, i);
		reply.putU8(NBD_DEVICE_CONNECTED, i == 1 ? 1 : 0);
		reply.endNested(item);
	}
	reply.endNested(list);
	auto bytes = asReply(reply, 1);
	auto parsed = GenericNetlink::parseDatagram(bytes, 1);
	REQUIRE(parsed);
	auto devices = NbdNetlink::parseStatusReply(parsed->replies);
	REQUIRE(devices);
	REQUIRE(devices->size() == 3);
	CHECK((*devices)[1].index == 1);
	CHECK((*devices)[1].connected);
	CHECK_FALSE((*devices)[2].connected);
}

TEST_CASE("the running kernel's generic netlink controller answers", "[netlink]")
{
	// Family names are at most 15 characters. nlctrl always exists and has the fixed id GENL_ID_CTRL: a real round trip.
	auto id = GenericNetlink::familyId("nlctrl");
	REQUIRE(id);
	CHECK(*id == GENL_ID_CTRL);
	auto missing = GenericNetlink::familyId("r3map-nofamily");
	REQUIRE_FALSE(missing);
	CHECK(missing.error().code.value() == ENOENT);
}
