#include "migration/wire.hpp"

#include <fmt/format.h>

#include "migration.pb.h"

namespace r3d::migration {

const char *messageTypeName(MessageType type)
{
	switch (type) {
	case MessageType::Hello: return "migration hello";
	case MessageType::HelloReply: return "migration hello reply";
	case MessageType::DirtyList: return "dirty list";
	case MessageType::RoundRequest: return "round request";
	case MessageType::FinalizeRequest: return "finalize request";
	case MessageType::FinalizeAck: return "finalize ack";
	case MessageType::FinalizeCommit: return "finalize commit";
	case MessageType::FinalizeCommitAck: return "finalize commit ack";
	case MessageType::Resume: return "resume";
	case MessageType::Complete: return "complete";
	}
	return "unknown";
}

void appendWire(std::string &out, MessageType type, const std::string &body, bool toSeeder)
{
	r3::v1::MigrationFrame pb;
	pb.set_type(static_cast<uint32_t>(type));
	pb.set_body(body);
	std::string meta;
	pb.SerializeToString(&meta);
	transport::FrameHeader header;
	header.kind = toSeeder ? transport::FrameKind::Request : transport::FrameKind::Response;
	header.metaLength = static_cast<uint32_t>(meta.size());
	std::array<std::byte, transport::kFrameHeaderSize> bytes{};
	transport::encodeFrameHeader(header, bytes);
	out.append(reinterpret_cast<const char *>(bytes.data()), bytes.size());
	out += meta;
}

ResultMsg<WireMessage> decodeWire(std::span<const std::byte> meta)
{
	if (meta.size() > kMaxWireMeta)
		return fail(EPROTO, fmt::format("migration frame of {} bytes is over the limit of {}", meta.size(),
						kMaxWireMeta));
	r3::v1::MigrationFrame pb;
	if (!pb.ParseFromArray(meta.data(), static_cast<int>(meta.size())))
		return fail(EPROTO, fmt::format("malformed migration frame ({} bytes)", meta.size()));
	if (pb.type() < static_cast<uint32_t>(MessageType::Hello) || pb.type() > static_cast<uint32_t>(MessageType::Complete))
		return fail(EPROTO, fmt::format("migration frame of unknown type {}", pb.type()));
	if (pb.body().size() > kMaxMigrationMeta)
		return fail(EPROTO, fmt::format("migration message of {} bytes is over the limit of {}", pb.body().size(),
						kMaxMigrationMeta));
	auto type = static_cast<MessageType>(pb.type());
	if (type == MessageType::Complete && !pb.body().empty())
		return fail(EPROTO, "a complete message carries a body");
	return WireMessage{ type, std::move(*pb.mutable_body()) };
}

} // namespace r3d::migration
