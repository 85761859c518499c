#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>

namespace r3d::nbd::kernel {

/// One attribute of a received netlink message. The payload points into the caller's
/// buffer. Getters check the payload size and return nullopt on a mismatch, so a
/// malformed reply from the kernel cannot make us read past it.
class NetlinkAttribute
{
public:
	NetlinkAttribute(uint16_t type, std::span<const std::byte> payload) : type_(type), payload_(payload) {}

	/// Every attribute in `bytes`; EPROTO when a length field points outside them.
	static Result<std::vector<NetlinkAttribute>> parseAll(std::span<const std::byte> bytes);
	/// The first attribute of `type` in `attributes`, if any.
	static const NetlinkAttribute *find(const std::vector<NetlinkAttribute> &attributes, uint16_t type);

	/// The type without the NESTED / NET_BYTEORDER flag bits.
	uint16_t type() const { return type_; }
	std::span<const std::byte> payload() const { return payload_; }

	std::optional<uint8_t> u8() const;
	std::optional<uint16_t> u16() const;
	std::optional<uint32_t> u32() const;
	std::optional<uint64_t> u64() const;
	/// Up to the first NUL (or the whole payload when there is none).
	std::string string() const;
	Result<std::vector<NetlinkAttribute>> nested() const { return parseAll(payload_); }

private:
	template <class T>
	std::optional<T> scalar() const;

	uint16_t type_;
	std::span<const std::byte> payload_;
};

} // namespace r3d::nbd::kernel
