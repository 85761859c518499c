#include "nbd/kernel/netlink_message.hpp"

#include <cstring>

#include <linux/genetlink.h>
#include <linux/netlink.h>

namespace r3d::nbd::kernel {

NetlinkMessage::NetlinkMessage(uint16_t family, uint8_t command, uint8_t version, uint16_t flags)
	: buffer_(NLMSG_HDRLEN + GENL_HDRLEN)
{
	nlmsghdr nlh{};
	nlh.nlmsg_type = family;
	nlh.nlmsg_flags = flags;
	std::memcpy(buffer_.data(), &nlh, sizeof(nlh));
	genlmsghdr genl{};
	genl.cmd = command;
	genl.version = version;
	std::memcpy(buffer_.data() + NLMSG_HDRLEN, &genl, sizeof(genl));
}

void NetlinkMessage::put(uint16_t type, const void *data, size_t length)
{
	size_t start = buffer_.size();
	buffer_.resize(start + NLA_ALIGN(NLA_HDRLEN + length)); // zero padding
	nlattr nla{};
	nla.nla_type = type;
	nla.nla_len = static_cast<uint16_t>(NLA_HDRLEN + length);
	std::memcpy(buffer_.data() + start, &nla, sizeof(nla));
	if (length)
		std::memcpy(buffer_.data() + start + NLA_HDRLEN, data, length);
}

NetlinkMessage &NetlinkMessage::putString(uint16_t type, std::string_view value)
{
	std::vector<char> text(value.begin(), value.end());
	text.push_back('\0');
	put(type, text.data(), text.size());
	return *this;
}

size_t NetlinkMessage::beginNested(uint16_t type)
{
	size_t token = buffer_.size();
	put(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
	return token;
}

void NetlinkMessage::endNested(size_t token)
{
	nlattr nla{};
	std::memcpy(&nla, buffer_.data() + token, sizeof(nla));
	nla.nla_len = static_cast<uint16_t>(buffer_.size() - token);
	std::memcpy(buffer_.data() + token, &nla, sizeof(nla));
}

std::span<const std::byte> NetlinkMessage::finish(uint32_t sequence)
{
	nlmsghdr nlh{};
	std::memcpy(&nlh, buffer_.data(), sizeof(nlh));
	nlh.nlmsg_len = static_cast<uint32_t>(buffer_.size());
	nlh.nlmsg_seq = sequence;
	std::memcpy(buffer_.data(), &nlh, sizeof(nlh));
	return buffer_;
}

} // namespace r3d::nbd::kernel
