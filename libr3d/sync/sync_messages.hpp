#pragma once

// The sync service's messages (proto/r3/v1/sync.proto) as plain structs, so only
// sync_messages.cpp sees protobuf. Every decoder validates every field (the copy's name,
// sizes, chunk indices inside the region, payload lengths, counts under the caps below)
// and fails with EPROTO and the reason, so nothing downstream sees a malformed message.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "sync/chunk_hasher.hpp"
#include "transport/chunk_set_codec.hpp"
#include "transport/frame.hpp"

namespace r3d::sync {

inline constexpr uint32_t kSyncVersion = 1;
/// The service name in the transport Hello.
inline constexpr const char *kSyncService = "sync";
/// SyncHello::hashKind: XXH3-128, the only one.
inline constexpr uint32_t kHashXxh3_128 = 1;
/// SyncChunk::encoding, and its bit (1 << encoding) in SyncHello(Reply)::encodings.
inline constexpr uint32_t kEncodingRaw = 0;
inline constexpr uint32_t kEncodingZstd = 1;
inline constexpr uint32_t kEncodingsKnown = 1u << kEncodingZstd;
/// Largest sync message (meta bytes), the longest name and message text.
inline constexpr size_t kMaxSyncMeta = 64 * 1024;
inline constexpr size_t kMaxNameLength = 255;
inline constexpr size_t kMaxMessageText = 4096;
/// Largest copy: 2^32 chunks.
inline constexpr uint64_t kMaxSyncChunks = uint64_t{ 1 } << 32;
/// Hashes in one SyncHashes frame (a 1 MiB payload).
inline constexpr uint64_t kHashesPerFrame = 65536;
/// Largest chunk: it travels as one frame payload.
inline constexpr uint64_t kMaxSyncChunk = 16ull << 20;

enum class SyncType : uint32_t {
	Hello = 1,
	HelloReply = 2,
	Hashes = 3,
	Begin = 4,
	Chunk = 5,
	Commit = 6,
	Ack = 7,
};

const char *syncTypeName(SyncType type);

/// A file cut into chunks; the last may be short.
struct SyncShape {
	uint64_t size = 0;
	uint64_t chunk = 0;
	uint64_t chunks() const { return chunk ? (size + chunk - 1) / chunk : 0; }
	uint64_t lengthOf(uint64_t index) const
	{
		uint64_t start = index * chunk;
		return start >= size ? 0 : std::min(chunk, size - start);
	}
};

struct SyncHello {
	uint32_t version = kSyncVersion;
	std::string name;
	uint64_t size = 0;
	uint64_t chunkSize = 0;
	uint32_t hashKind = kHashXxh3_128;
	uint32_t encodings = 0;
};

struct SyncHelloReply {
	int error = 0;
	std::string message;
	uint64_t generation = 0;
	uint64_t size = 0;
	uint64_t hashCount = 0;
	uint32_t encodings = 0;
};

/// Hashes of chunks [first, first + hashes.size()); they travel as the payload.
struct SyncHashes {
	uint64_t first = 0;
	bool last = false;
	std::vector<ChunkHash> hashes;
};

struct SyncBegin {
	uint64_t generation = 0;
	uint64_t size = 0;
	transport::ChunkWindow chunks;
	bool last = false;
};

/// A chunk's bytes travel as the payload.
struct SyncChunk {
	uint64_t generation = 0;
	uint64_t index = 0;
	uint32_t encoding = kEncodingRaw;
};

struct SyncCommit {
	uint64_t generation = 0;
};

struct SyncAck {
	uint64_t generation = 0;
	int error = 0;
	std::string message;
};

/// A decoded frame: its message type, body, and the payload length that follows it.
struct SyncMessage {
	SyncType type = SyncType::Hello;
	std::string body;
	uint32_t payloadLength = 0;

	std::span<const std::byte> bytes() const { return std::as_bytes(std::span(body.data(), body.size())); }
};

/// The frame limits a sync reader uses (a payload holds at most one chunk or hash frame).
inline transport::FrameLimits syncLimits()
{
	return transport::FrameLimits{ static_cast<uint32_t>(kMaxSyncMeta + 64), static_cast<uint32_t>(kMaxSyncChunk), 0 };
}

/// Appends a frame header and its SyncFrame meta to `out`, announcing `payloadLength`
/// bytes of payload that the caller sends next; a Request frame when `toReceiver`.
void appendSyncFrame(std::string &out, SyncType type, const std::string &body, uint32_t payloadLength,
		     bool toReceiver);
/// Decodes a frame's meta; EPROTO for a malformed frame, an unknown type, an oversize body
/// or a payload on a message that carries none.
ResultMsg<SyncMessage> decodeSyncFrame(std::span<const std::byte> meta, uint32_t payloadLength);

std::string encode(const SyncHello &m);
std::string encode(const SyncHelloReply &m);
/// The meta only; hashPayload() gives the payload.
std::string encode(const SyncHashes &m);
std::string hashPayload(const std::vector<ChunkHash> &hashes, uint64_t first, uint64_t count);
std::string encode(const SyncBegin &m);
std::string encode(const SyncChunk &m);
std::string encode(const SyncCommit &m);
std::string encode(const SyncAck &m);

/// Checks the name (no '/', not hidden, not "." or ".."), the version, the hash kind, a
/// chunk size in [kMinChunk, kMaxSyncChunk] and at most kMaxSyncChunks chunks.
ResultMsg<SyncHello> decodeSyncHello(std::span<const std::byte> meta);
/// `chunk`: the sender's chunk size; hashCount must match the copy's chunks.
ResultMsg<SyncHelloReply> decodeSyncHelloReply(std::span<const std::byte> meta, uint64_t chunk);
/// Against the copy `shape`: a payload of whole hashes, inside the copy's chunks.
ResultMsg<SyncHashes> decodeSyncHashes(std::span<const std::byte> meta, std::span<const std::byte> payload,
				       const SyncShape &shape);
/// `chunk`: the hello's chunk size; the window is checked against the new size.
ResultMsg<SyncBegin> decodeSyncBegin(std::span<const std::byte> meta, uint64_t chunk);
/// Against the generation's shape: a chunk inside it, a payload of its exact length; or,
/// in one of the agreed `encodings` (bits), a payload shorter than that.
ResultMsg<SyncChunk> decodeSyncChunk(std::span<const std::byte> meta, uint32_t payloadLength,
				     const SyncShape &shape, uint32_t encodings = 0);
ResultMsg<SyncCommit> decodeSyncCommit(std::span<const std::byte> meta);
ResultMsg<SyncAck> decodeSyncAck(std::span<const std::byte> meta);

/// A name a receiver may create in its directory.
ResultMsg<void> checkSyncName(const std::string &name);

} // namespace r3d::sync
