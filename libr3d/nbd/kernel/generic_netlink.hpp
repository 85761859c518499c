#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "nbd/kernel/netlink_message.hpp"

namespace r3d::nbd::kernel {

/// A generic netlink message the kernel sent back: its command and attribute bytes.
struct GenlReply {
	uint8_t command = 0;
	std::vector<std::byte> attributes;
};

/// What one received datagram said.
struct GenlDatagram {
	std::vector<GenlReply> replies;
	bool done = false;      ///< the ack (or NLMSG_DONE) for our request arrived
	int error = 0;          ///< errno from an NLMSG_ERROR, 0 for a plain ack
	std::string errorText;  ///< the kernel's extended-ack message, if it sent one
};

/// Request/response over NETLINK_GENERIC. Every transact() uses a fresh socket: a socket
/// shared between requests (or threads) gets replies with someone else's sequence
/// numbers. Receives are bounded by a timeout so a silent kernel cannot hang us.
class GenericNetlink
{
public:
	static constexpr std::chrono::milliseconds kDefaultTimeout{ 10000 };

	/// Sends `message` with NLM_F_REQUEST|NLM_F_ACK and collects the replies up to the ack.
	/// A kernel error comes back with its errno and, if given, its extended-ack text.
	static ResultMsg<std::vector<GenlReply>> transact(NetlinkMessage &message,
							 std::chrono::milliseconds timeout = kDefaultTimeout);

	/// The id of a generic netlink family, through the controller. ENOENT when the
	/// family is not registered (for "nbd": the module is not loaded).
	static ResultMsg<uint16_t> familyId(const std::string &name,
					    std::chrono::milliseconds timeout = kDefaultTimeout);

	/// Parses one datagram: messages with another sequence number are skipped; a
	/// truncated or malformed message is EPROTO.
	static Result<GenlDatagram> parseDatagram(std::span<const std::byte> bytes, uint32_t sequence);
};

} // namespace r3d::nbd::kernel
