#include "nbd/kernel/generic_netlink.hpp"

#include <atomic>
#include <cstring>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/unique_fd.hpp>

#include "nbd/kernel/netlink_attribute.hpp"

namespace r3d::nbd::kernel {

namespace {

// SOL_NETLINK options the Debian 12 headers may lack.
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif

constexpr size_t kReceiveBuffer = 64 * 1024;

std::atomic<uint32_t> gSequence{ 1 };

std::string extendedAckText(std::span<const std::byte> message, const nlmsghdr &nlh)
{
	if (!(nlh.nlmsg_flags & NLM_F_ACK_TLVS))
		return {};
	// After the nlmsgerr comes the original request (unless capped), then the TLVs.
	size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
	if (!(nlh.nlmsg_flags & NLM_F_CAPPED)) {
		nlmsgerr err{};
		std::memcpy(&err, message.data() + NLMSG_HDRLEN, sizeof(err));
		offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(int)) + NLMSG_ALIGN(err.msg.nlmsg_len);
	}
	if (offset >= message.size())
		return {};
	auto attributes = NetlinkAttribute::parseAll(message.subspan(offset));
	if (!attributes)
		return {};
	if (auto *text = NetlinkAttribute::find(*attributes, NLMSGERR_ATTR_MSG))
		return text->string();
	return {};
}

} // namespace

Result<GenlDatagram> GenericNetlink::parseDatagram(std::span<const std::byte> bytes, uint32_t sequence)
{
	GenlDatagram out;
	size_t offset = 0;
	while (offset + NLMSG_HDRLEN <= bytes.size()) {
		nlmsghdr nlh{};
		std::memcpy(&nlh, bytes.data() + offset, sizeof(nlh));
		if (nlh.nlmsg_len < NLMSG_HDRLEN || offset + nlh.nlmsg_len > bytes.size())
			return unexpected(EPROTO);
		auto message = bytes.subspan(offset, nlh.nlmsg_len);
		offset += NLMSG_ALIGN(nlh.nlmsg_len);
		if (nlh.nlmsg_seq != sequence)
			continue;

		if (nlh.nlmsg_type == NLMSG_ERROR) {
			if (message.size() < NLMSG_HDRLEN + sizeof(int))
				return unexpected(EPROTO);
			int error = 0;
			std::memcpy(&error, message.data() + NLMSG_HDRLEN, sizeof(error));
			out.done = true;
			out.error = -error;
			if (error != 0)
				out.errorText = extendedAckText(message, nlh);
			continue;
		}
		if (nlh.nlmsg_type == NLMSG_DONE) {
			out.done = true;
			continue;
		}
		if (nlh.nlmsg_type == NLMSG_NOOP)
			continue;
		if (message.size() < NLMSG_HDRLEN + GENL_HDRLEN)
			return unexpected(EPROTO);
		genlmsghdr genl{};
		std::memcpy(&genl, message.data() + NLMSG_HDRLEN, sizeof(genl));
		auto attributes = message.subspan(NLMSG_HDRLEN + GENL_HDRLEN);
		out.replies.push_back(GenlReply{ genl.cmd, { attributes.begin(), attributes.end() } });
	}
	return out;
}

ResultMsg<std::vector<GenlReply>> GenericNetlink::transact(NetlinkMessage &message, std::chrono::milliseconds timeout)
{
	UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
	if (!fd)
		return fail(errno, fmt::format("netlink socket: {}", std::strerror(errno)));
	int one = 1;
	// Best effort: older kernels simply send no text.
	(void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	sockaddr_nl local{};
	local.nl_family = AF_NETLINK;
	if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&local), sizeof(local)) != 0)
		return fail(errno, fmt::format("netlink bind: {}", std::strerror(errno)));

	uint32_t sequence = gSequence.fetch_add(1);
	auto bytes = message.finish(sequence);
	sockaddr_nl kernel{};
	kernel.nl_family = AF_NETLINK;
	ssize_t sent = ::sendto(fd.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&kernel),
				sizeof(kernel));
	if (sent != static_cast<ssize_t>(bytes.size()))
		return fail(sent < 0 ? errno : EIO, fmt::format("netlink send: {}", std::strerror(errno)));

	auto deadline = std::chrono::steady_clock::now() + timeout;
	std::vector<GenlReply> replies;
	std::vector<std::byte> buffer(kReceiveBuffer);
	for (;;) {
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		pollfd pfd{ fd.get(), POLLIN, 0 };
		int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			return fail(errno, fmt::format("netlink poll: {}", std::strerror(errno)));
		if (ready == 0)
			return fail(ETIMEDOUT, fmt::format("no netlink reply within {} ms", timeout.count()));
		ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(errno, fmt::format("netlink receive: {}", std::strerror(errno)));
		if (static_cast<size_t>(n) > buffer.size())
			return fail(EMSGSIZE, fmt::format("netlink reply of {} bytes truncated", n));
		auto datagram = parseDatagram(std::span(buffer).first(static_cast<size_t>(n)), sequence);
		if (!datagram)
			return fail(datagram.error(), "malformed netlink reply");
		for (auto &r : datagram->replies)
			replies.push_back(std::move(r));
		if (datagram->error)
			return fail(datagram->error, datagram->errorText.empty() ? std::strerror(datagram->error)
										 : datagram->errorText);
		if (datagram->done)
			return replies;
	}
}

ResultMsg<uint16_t> GenericNetlink::familyId(const std::string &name, std::chrono::milliseconds timeout)
{
	NetlinkMessage request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_REQUEST | NLM_F_ACK);
	request.putString(CTRL_ATTR_FAMILY_NAME, name);
	auto replies = transact(request, timeout);
	if (!replies) {
		if (replies.error().code.value() == ENOENT)
			return fail(ENOENT, fmt::format("generic netlink family '{}' is not registered", name));
		return unexpectedOf(replies.error());
	}
	for (const auto &reply : *replies) {
		auto attributes = NetlinkAttribute::parseAll(reply.attributes);
		if (!attributes)
			continue;
		if (auto *id = NetlinkAttribute::find(*attributes, CTRL_ATTR_FAMILY_ID); id && id->u16())
			return *id->u16();
	}
	return fail(EPROTO, fmt::format("the netlink controller sent no id for family '{}'", name));
}

} // namespace r3d::nbd::kernel
