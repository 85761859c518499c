#pragma once

// The migration service's messages (proto/r3/v1/migration.proto) as plain structs, so only
// messages.cpp sees protobuf. Every decoder validates every field against the region it is
// about (sizes, chunk indices inside the region, counts under the caps below) and fails with
// EPROTO and the reason, so nothing downstream sees a malformed or oversize message.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "transport/chunk_set_codec.hpp"

namespace r3d::migration {

/// The migration service's version in MigrationHello.
inline constexpr uint32_t kMigrationVersion = 1;
/// The service name in the transport Hello.
inline constexpr const char *kMigrationService = "migration";
/// Largest migration message accepted (meta bytes), and the longest id and message text.
inline constexpr size_t kMaxMigrationMeta = 64 * 1024;
inline constexpr size_t kMaxIdLength = 128;
inline constexpr size_t kMaxMessageText = 4096;
/// Largest region: 2^32 chunks (a 256 TiB region at 64 KiB chunks).
inline constexpr uint64_t kMaxRegionChunks = uint64_t{ 1 } << 32;

/// The region a message is checked against.
struct RegionShape {
	uint64_t size = 0;
	uint64_t chunk = 0;
	uint64_t chunks() const { return chunk ? (size + chunk - 1) / chunk : 0; }
};

// The chunk-set encoding is shared with the sync service (transport/chunk_set_codec.hpp).
using transport::ChunkWindow;
using transport::kMaxBitmapBytes;
using transport::kMaxRuns;
using transport::kWindowChunks;
using transport::splitWindows;

struct MigrationHello {
	uint32_t version = kMigrationVersion;
	std::string migrationId;
	std::string leecherId;
	uint64_t regionSize = 0; ///< 0: any
	uint64_t chunkSize = 0;  ///< 0: any
	uint64_t epoch = 0;      ///< 0: a new leecher
};

struct MigrationHelloReply {
	int error = 0;
	std::string message;
	std::string migrationId;
	uint64_t regionSize = 0;
	uint64_t chunkSize = 0;
	uint64_t epoch = 0;
	uint64_t round = 0;
	bool handedOver = false;
};

struct DirtyList {
	uint64_t round = 0;
	uint64_t epoch = 0;
	ChunkWindow chunks;
	bool last = false;
};

struct RoundRequest {
	uint64_t appliedRound = 0;
};

struct FinalizeRequest {
	std::string migrationId;
	std::string leecherId;
	uint64_t epoch = 0;
	uint64_t round = 0;
};

struct FinalizeAck {
	int error = 0;
	std::string message;
	uint64_t epoch = 0;
	uint64_t round = 0;
	uint64_t lockedNs = 0; ///< how long the seeder had been locked when it sent the ack
};

struct FinalizeCommit {
	std::string migrationId;
	std::string leecherId;
	uint64_t epoch = 0;
};

struct FinalizeCommitAck {
	int error = 0;
	std::string message;
	uint64_t epoch = 0;
};

struct Resume {
	std::string migrationId;
	std::string leecherId;
	uint64_t epoch = 0;
	uint64_t round = 0;
	ChunkWindow held;
	bool last = false;
};

/// Serialized messages (the meta of a frame). A ChunkWindow is written as runs or as a
/// bitmap, whichever is smaller; its chunks must be ascending and inside the window.
std::string encode(const MigrationHello &m);
std::string encode(const MigrationHelloReply &m);
std::string encode(const DirtyList &m);
std::string encode(const RoundRequest &m);
std::string encode(const FinalizeRequest &m);
std::string encode(const FinalizeAck &m);
std::string encode(const FinalizeCommit &m);
std::string encode(const FinalizeCommitAck &m);
std::string encode(const Resume &m);

/// The hellos are checked on their own (the region is what they set up).
ResultMsg<MigrationHello> decodeMigrationHello(std::span<const std::byte> meta);
ResultMsg<MigrationHelloReply> decodeMigrationHelloReply(std::span<const std::byte> meta);
/// Everything after the hello is checked against the region the hello agreed on.
ResultMsg<DirtyList> decodeDirtyList(std::span<const std::byte> meta, const RegionShape &region);
ResultMsg<RoundRequest> decodeRoundRequest(std::span<const std::byte> meta);
ResultMsg<FinalizeRequest> decodeFinalizeRequest(std::span<const std::byte> meta);
ResultMsg<FinalizeAck> decodeFinalizeAck(std::span<const std::byte> meta);
ResultMsg<FinalizeCommit> decodeFinalizeCommit(std::span<const std::byte> meta);
ResultMsg<FinalizeCommitAck> decodeFinalizeCommitAck(std::span<const std::byte> meta);
ResultMsg<Resume> decodeResume(std::span<const std::byte> meta, const RegionShape &region);

/// Checks a region a hello announces: a chunk size the stages accept, a size > 0, at most
/// kMaxRegionChunks chunks.
ResultMsg<void> checkRegion(const RegionShape &region);

} // namespace r3d::migration
