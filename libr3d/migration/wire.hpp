#pragma once

// How migration messages travel in the transport's frames: each frame's meta is one
// MigrationFrame (migration.proto) naming the message type and carrying its bytes; leecher
// to seeder in Request frames, seeder to leecher in Response frames, never a payload.

#include <cstdint>
#include <span>
#include <string>

#include <r3d/result.hpp>

#include "migration/messages.hpp"
#include "transport/frame.hpp"

namespace r3d::migration {

enum class MessageType : uint32_t {
	Hello = 1,
	HelloReply = 2,
	DirtyList = 3,
	RoundRequest = 4,
	FinalizeRequest = 5,
	FinalizeAck = 6,
	FinalizeCommit = 7,
	FinalizeCommitAck = 8,
	Resume = 9,
	Complete = 10,
};

const char *messageTypeName(MessageType type);

/// Largest meta of a migration frame: a message plus the frame's few bytes.
inline constexpr uint32_t kMaxWireMeta = kMaxMigrationMeta + 64;

/// The frame limits a migration reader uses.
inline transport::FrameLimits wireLimits()
{
	return transport::FrameLimits{ kMaxWireMeta, 0, 0 };
}

struct WireMessage {
	MessageType type = MessageType::Hello;
	std::string body;

	std::span<const std::byte> bytes() const { return std::as_bytes(std::span(body.data(), body.size())); }
};

/// Appends a whole frame (header + MigrationFrame) to `out`: a Request frame when
/// `toSeeder`, else a Response frame.
void appendWire(std::string &out, MessageType type, const std::string &body, bool toSeeder);
/// Decodes a frame's meta; EPROTO for a malformed frame, an unknown type or an oversize body.
ResultMsg<WireMessage> decodeWire(std::span<const std::byte> meta);

} // namespace r3d::migration
