#include "sync/sync_messages.hpp"

#include <array>

#include <fmt/format.h>

#include "base/limits.hpp"
#include "transport/proto_message.hpp"
#include "sync.pb.h"

namespace r3d::sync {

namespace {

template <class Message>
std::string serialize(const Message &m)
{
	return transport::serializeMessage(m);
}

template <class Message>
ResultMsg<Message> parse(std::span<const std::byte> meta, const char *what)
{
	return transport::parseMessage<Message>(meta, kMaxSyncMeta, what);
}

ResultMsg<void> checkError(int32_t error, const std::string &message, const char *what)
{
	if (error < 0 || error > 4095)
		return fail(EPROTO, fmt::format("{} carries error {}, not an errno", what, error));
	if (message.size() > kMaxMessageText)
		return fail(EPROTO, fmt::format("{} carries a {}-byte message, over the limit of {}", what,
						message.size(), kMaxMessageText));
	return {};
}

ResultMsg<void> checkShape(const SyncShape &shape, const char *what)
{
	if (shape.chunk < limits::kMinChunk || shape.chunk > kMaxSyncChunk)
		return fail(EPROTO, fmt::format("{}: chunk size {} is outside [{}, {}]", what, shape.chunk,
						limits::kMinChunk, kMaxSyncChunk));
	if (shape.chunks() > kMaxSyncChunks)
		return fail(EPROTO, fmt::format("{}: {} chunks, over the limit of {}", what, shape.chunks(),
						kMaxSyncChunks));
	return {};
}

ResultMsg<void> checkGeneration(uint64_t generation, const char *what)
{
	if (generation == 0)
		return fail(EPROTO, fmt::format("{} names generation 0; generations start at 1", what));
	return {};
}

} // namespace

const char *syncTypeName(SyncType type)
{
	switch (type) {
	case SyncType::Hello: return "sync hello";
	case SyncType::HelloReply: return "sync hello reply";
	case SyncType::Hashes: return "hashes";
	case SyncType::Begin: return "generation begin";
	case SyncType::Chunk: return "chunk";
	case SyncType::Commit: return "commit";
	case SyncType::Ack: return "ack";
	}
	return "unknown";
}

void appendSyncFrame(std::string &out, SyncType type, const std::string &body, uint32_t payloadLength,
		     bool toReceiver)
{
	r3::v1::SyncFrame pb;
	pb.set_type(static_cast<uint32_t>(type));
	pb.set_body(body);
	std::string meta = serialize(pb);
	transport::FrameHeader header;
	header.kind = toReceiver ? transport::FrameKind::Request : transport::FrameKind::Response;
	header.metaLength = static_cast<uint32_t>(meta.size());
	header.payloadLength = payloadLength;
	std::array<std::byte, transport::kFrameHeaderSize> bytes{};
	transport::encodeFrameHeader(header, bytes);
	out.append(reinterpret_cast<const char *>(bytes.data()), bytes.size());
	out += meta;
}

ResultMsg<SyncMessage> decodeSyncFrame(std::span<const std::byte> meta, uint32_t payloadLength)
{
	if (meta.size() > kMaxSyncMeta + 64)
		return fail(EPROTO, fmt::format("sync frame of {} bytes is over the limit of {}", meta.size(),
						kMaxSyncMeta + 64));
	r3::v1::SyncFrame pb;
	if (!pb.ParseFromArray(meta.data(), static_cast<int>(meta.size())))
		return fail(EPROTO, fmt::format("malformed sync frame ({} bytes)", meta.size()));
	if (pb.type() < static_cast<uint32_t>(SyncType::Hello) || pb.type() > static_cast<uint32_t>(SyncType::Ack))
		return fail(EPROTO, fmt::format("sync frame of unknown type {}", pb.type()));
	if (pb.body().size() > kMaxSyncMeta)
		return fail(EPROTO, fmt::format("sync message of {} bytes is over the limit of {}", pb.body().size(),
						kMaxSyncMeta));
	auto type = static_cast<SyncType>(pb.type());
	if (payloadLength != 0 && type != SyncType::Hashes && type != SyncType::Chunk)
		return fail(EPROTO, fmt::format("a {} carries a {}-byte payload", syncTypeName(type), payloadLength));
	if (payloadLength > kMaxSyncChunk)
		return fail(EPROTO, fmt::format("a {}-byte payload is over the limit of {}", payloadLength, kMaxSyncChunk));
	return SyncMessage{ type, std::move(*pb.mutable_body()), payloadLength };
}

ResultMsg<void> checkSyncName(const std::string &name)
{
	if (name.empty())
		return fail(EPROTO, "the copy's name is empty");
	if (name.size() > kMaxNameLength)
		return fail(EPROTO, fmt::format("the copy's name is {} bytes long, over the limit of {}", name.size(),
						kMaxNameLength));
	if (name.front() == '.')
		return fail(EPROTO, fmt::format("the copy's name '{}' starts with '.' (reserved for the receiver's "
						"journal and hash files)",
						name));
	for (char c : name)
		if (c == '/' || c == '\0')
			return fail(EPROTO, fmt::format("the copy's name '{}' contains '/' or NUL", name));
	return {};
}

std::string encode(const SyncHello &m)
{
	r3::v1::SyncHello pb;
	pb.set_version(m.version);
	pb.set_name(m.name);
	pb.set_size(m.size);
	pb.set_chunk_size(m.chunkSize);
	pb.set_hash_kind(m.hashKind);
	pb.set_encodings(m.encodings);
	return serialize(pb);
}

std::string encode(const SyncHelloReply &m)
{
	r3::v1::SyncHelloReply pb;
	pb.set_error(m.error);
	pb.set_message(m.message);
	pb.set_generation(m.generation);
	pb.set_size(m.size);
	pb.set_hash_count(m.hashCount);
	pb.set_encodings(m.encodings);
	return serialize(pb);
}

std::string encode(const SyncHashes &m)
{
	r3::v1::SyncHashes pb;
	pb.set_first(m.first);
	pb.set_last(m.last);
	return serialize(pb);
}

std::string hashPayload(const std::vector<ChunkHash> &hashes, uint64_t first, uint64_t count)
{
	std::string out(static_cast<size_t>(count * kHashBytes), '\0');
	for (uint64_t i = 0; i < count; ++i)
		putHash(hashes[first + i], reinterpret_cast<std::byte *>(out.data()) + i * kHashBytes);
	return out;
}

std::string encode(const SyncBegin &m)
{
	r3::v1::SyncBegin pb;
	pb.set_generation(m.generation);
	pb.set_size(m.size);
	transport::fillChunkSet(*pb.mutable_chunks(), m.chunks);
	pb.set_last(m.last);
	return serialize(pb);
}

std::string encode(const SyncChunk &m)
{
	r3::v1::SyncChunk pb;
	pb.set_generation(m.generation);
	pb.set_index(m.index);
	pb.set_encoding(m.encoding);
	return serialize(pb);
}

std::string encode(const SyncCommit &m)
{
	r3::v1::SyncCommit pb;
	pb.set_generation(m.generation);
	return serialize(pb);
}

std::string encode(const SyncAck &m)
{
	r3::v1::SyncAck pb;
	pb.set_generation(m.generation);
	pb.set_error(m.error);
	pb.set_message(m.message);
	return serialize(pb);
}

ResultMsg<SyncHello> decodeSyncHello(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::SyncHello>(meta, "sync hello");
	if (!pb)
		return unexpectedOf(pb.error());
	if (pb->version() != kSyncVersion)
		return fail(EPROTONOSUPPORT, fmt::format("sync protocol version {} is not supported (this side speaks {})",
						pb->version(), kSyncVersion));
	if (pb->hash_kind() != kHashXxh3_128)
		return fail(EPROTONOSUPPORT, fmt::format("hash kind {} is not supported (1: XXH3-128)", pb->hash_kind()));
	if (auto ok = checkSyncName(pb->name()); !ok)
		return unexpectedOf(ok.error());
	if (auto ok = checkShape(SyncShape{ pb->size(), pb->chunk_size() }, "sync hello"); !ok)
		return unexpectedOf(ok.error());
	// Unknown encodings are not an error: the reply takes only the ones this side knows.
	return SyncHello{ pb->version(), pb->name(), pb->size(), pb->chunk_size(), pb->hash_kind(), pb->encodings() };
}

ResultMsg<SyncHelloReply> decodeSyncHelloReply(std::span<const std::byte> meta, uint64_t chunk)
{
	auto pb = parse<r3::v1::SyncHelloReply>(meta, "sync hello reply");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkError(pb->error(), pb->message(), "sync hello reply"); !ok)
		return unexpectedOf(ok.error());
	SyncHelloReply m{ pb->error(), pb->message(), pb->generation(), pb->size(), pb->hash_count(), pb->encodings() };
	if (m.error)
		return m;
	if (m.encodings & ~kEncodingsKnown)
		return fail(EPROTO, fmt::format("sync hello reply takes unknown chunk encodings {:#x}", m.encodings));
	SyncShape shape{ m.size, chunk };
	if (auto ok = checkShape(shape, "sync hello reply"); !ok)
		return unexpectedOf(ok.error());
	if (m.hashCount != shape.chunks())
		return fail(EPROTO, fmt::format("sync hello reply announces {} hashes for a copy of {} chunks",
						m.hashCount, shape.chunks()));
	return m;
}

ResultMsg<SyncHashes> decodeSyncHashes(std::span<const std::byte> meta, std::span<const std::byte> payload,
				       const SyncShape &shape)
{
	auto pb = parse<r3::v1::SyncHashes>(meta, "hashes");
	if (!pb)
		return unexpectedOf(pb.error());
	if (payload.size() % kHashBytes != 0)
		return fail(EPROTO, fmt::format("hashes: a {}-byte payload is not whole {}-byte hashes", payload.size(),
						kHashBytes));
	uint64_t n = payload.size() / kHashBytes;
	if (n > kHashesPerFrame)
		return fail(EPROTO, fmt::format("hashes: {} in one frame, over the limit of {}", n, kHashesPerFrame));
	const uint64_t count = shape.chunks();
	if (pb->first() > count || n > count - pb->first())
		return fail(EPROTO, fmt::format("hashes of chunks [{}, {}) outside the copy's {} chunks", pb->first(),
						pb->first() + n, count));
	SyncHashes m{ pb->first(), pb->last(), {} };
	m.hashes.reserve(static_cast<size_t>(n));
	for (uint64_t i = 0; i < n; ++i)
		m.hashes.push_back(getHash(payload.data() + i * kHashBytes));
	return m;
}

ResultMsg<SyncBegin> decodeSyncBegin(std::span<const std::byte> meta, uint64_t chunk)
{
	auto pb = parse<r3::v1::SyncBegin>(meta, "generation begin");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkGeneration(pb->generation(), "generation begin"); !ok)
		return unexpectedOf(ok.error());
	SyncShape shape{ pb->size(), chunk };
	if (auto ok = checkShape(shape, "generation begin"); !ok)
		return unexpectedOf(ok.error());
	SyncBegin m{ pb->generation(), pb->size(), {}, pb->last() };
	if (shape.chunks() == 0) {
		// An empty file: no window to name.
		if (pb->chunks().window_end() != 0 || pb->chunks().runs_size() || !pb->chunks().bitmap().empty())
			return fail(EPROTO, "generation begin: chunks listed for an empty file");
		return m;
	}
	auto window = transport::readChunkSet(pb->chunks(), shape.chunks(), "generation begin");
	if (!window)
		return unexpectedOf(window.error());
	m.chunks = std::move(*window);
	return m;
}

ResultMsg<SyncChunk> decodeSyncChunk(std::span<const std::byte> meta, uint32_t payloadLength,
				     const SyncShape &shape, uint32_t encodings)
{
	auto pb = parse<r3::v1::SyncChunk>(meta, "chunk");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkGeneration(pb->generation(), "chunk"); !ok)
		return unexpectedOf(ok.error());
	if (pb->index() >= shape.chunks())
		return fail(EPROTO, fmt::format("chunk {} is outside the copy's {} chunks", pb->index(), shape.chunks()));
	if (pb->encoding() != kEncodingRaw) {
		if (pb->encoding() >= 32 || !(encodings & (1u << pb->encoding())))
			return fail(EPROTO, fmt::format("chunk {} in encoding {}, which was not agreed", pb->index(),
							pb->encoding()));
		if (payloadLength == 0 || payloadLength >= shape.lengthOf(pb->index()))
			return fail(EPROTO, fmt::format("zstd chunk {} carries {} bytes, not fewer than its {}", pb->index(),
							payloadLength, shape.lengthOf(pb->index())));
		return SyncChunk{ pb->generation(), pb->index(), pb->encoding() };
	}
	if (payloadLength != shape.lengthOf(pb->index()))
		return fail(EPROTO, fmt::format("chunk {} carries {} bytes, not its {}", pb->index(), payloadLength,
						shape.lengthOf(pb->index())));
	return SyncChunk{ pb->generation(), pb->index() };
}

ResultMsg<SyncCommit> decodeSyncCommit(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::SyncCommit>(meta, "commit");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkGeneration(pb->generation(), "commit"); !ok)
		return unexpectedOf(ok.error());
	return SyncCommit{ pb->generation() };
}

ResultMsg<SyncAck> decodeSyncAck(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::SyncAck>(meta, "ack");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkError(pb->error(), pb->message(), "ack"); !ok)
		return unexpectedOf(ok.error());
	if (pb->error() == 0)
		if (auto ok = checkGeneration(pb->generation(), "ack"); !ok)
			return unexpectedOf(ok.error());
	return SyncAck{ pb->generation(), pb->error(), pb->message() };
}

} // namespace r3d::sync
