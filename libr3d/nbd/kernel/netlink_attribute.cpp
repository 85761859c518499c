#include "nbd/kernel/netlink_attribute.hpp"

#include <cstring>

#include <linux/netlink.h>

namespace r3d::nbd::kernel {

Result<std::vector<NetlinkAttribute>> NetlinkAttribute::parseAll(std::span<const std::byte> bytes)
{
	std::vector<NetlinkAttribute> out;
	size_t offset = 0;
	while (offset + NLA_HDRLEN <= bytes.size()) {
		nlattr nla{};
		std::memcpy(&nla, bytes.data() + offset, sizeof(nla));
		if (nla.nla_len < NLA_HDRLEN || offset + nla.nla_len > bytes.size())
			return unexpected(EPROTO);
		out.emplace_back(static_cast<uint16_t>(nla.nla_type & NLA_TYPE_MASK),
				 bytes.subspan(offset + NLA_HDRLEN, nla.nla_len - NLA_HDRLEN));
		offset += NLA_ALIGN(nla.nla_len);
	}
	return out;
}

const NetlinkAttribute *NetlinkAttribute::find(const std::vector<NetlinkAttribute> &attributes, uint16_t type)
{
	for (const auto &a : attributes)
		if (a.type() == type)
			return &a;
	return nullptr;
}

template <class T>
std::optional<T> NetlinkAttribute::scalar() const
{
	if (payload_.size() != sizeof(T))
		return std::nullopt;
	T value;
	std::memcpy(&value, payload_.data(), sizeof(T));
	return value;
}

std::optional<uint8_t> NetlinkAttribute::u8() const
{
	return scalar<uint8_t>();
}

std::optional<uint16_t> NetlinkAttribute::u16() const
{
	return scalar<uint16_t>();
}

std::optional<uint32_t> NetlinkAttribute::u32() const
{
	return scalar<uint32_t>();
}

std::optional<uint64_t> NetlinkAttribute::u64() const
{
	return scalar<uint64_t>();
}

std::string NetlinkAttribute::string() const
{
	const char *text = reinterpret_cast<const char *>(payload_.data());
	return std::string(text, ::strnlen(text, payload_.size()));
}

} // namespace r3d::nbd::kernel
