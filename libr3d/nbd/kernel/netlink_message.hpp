#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace r3d::nbd::kernel {

/// Builds one generic netlink request: nlmsghdr, genlmsghdr and attributes (nested ones
/// too), each padded to 4 bytes as the kernel's nla_* parsers expect. Native byte order.
class NetlinkMessage
{
public:
	/// `family` is the generic netlink family id (GENL_ID_CTRL for the controller).
	NetlinkMessage(uint16_t family, uint8_t command, uint8_t version, uint16_t flags);

	NetlinkMessage &putU8(uint16_t type, uint8_t value) { return putScalar(type, value); }
	NetlinkMessage &putU16(uint16_t type, uint16_t value) { return putScalar(type, value); }
	NetlinkMessage &putU32(uint16_t type, uint32_t value) { return putScalar(type, value); }
	NetlinkMessage &putU64(uint16_t type, uint64_t value) { return putScalar(type, value); }
	/// NUL-terminated, as NLA_STRING / NLA_NUL_STRING policies accept.
	NetlinkMessage &putString(uint16_t type, std::string_view value);

	/// Opens a nested attribute; every attribute added until endNested() goes inside it.
	size_t beginNested(uint16_t type);
	void endNested(size_t token);

	/// Stamps the sequence number and returns the finished bytes.
	std::span<const std::byte> finish(uint32_t sequence);
	std::span<const std::byte> bytes() const { return buffer_; }

private:
	template <class T>
	NetlinkMessage &putScalar(uint16_t type, T value)
	{
		put(type, &value, sizeof(value));
		return *this;
	}
	void put(uint16_t type, const void *data, size_t length);

	std::vector<std::byte> buffer_;
};

} // namespace r3d::nbd::kernel
