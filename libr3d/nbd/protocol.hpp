#pragma once

// NBD wire constants (doc/proto.md of NetworkBlockDevice/nbd). Declarations only; all
// fields are big-endian on the wire.

#include <cstdint>

namespace r3d::nbd {

inline constexpr uint64_t kInitPasswd = 0x4e42444d41474943ull; // "NBDMAGIC"
inline constexpr uint64_t kIHaveOpt = 0x49484156454f5054ull;   // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ull;
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;

// Handshake flags (server) and client flags.
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Transmission flags.
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagRotational = 1 << 4;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendResize = 1 << 9;
inline constexpr uint16_t kFlagSendCache = 1 << 10;
inline constexpr uint16_t kFlagSendFastZero = 1 << 11;

enum class Opt : uint32_t {
	ExportName = 1,
	Abort = 2,
	List = 3,
	PeekExport = 4,
	StartTls = 5,
	Info = 6,
	Go = 7,
	StructuredReply = 8,
	ListMetaContext = 9,
	SetMetaContext = 10,
	ExtendedHeaders = 11,
};

enum class Rep : uint32_t {
	Ack = 1,
	Server = 2,
	Info = 3,
	MetaContext = 4,
	ErrUnsup = 0x80000001,
	ErrPolicy = 0x80000002,
	ErrInvalid = 0x80000003,
	ErrPlatform = 0x80000004,
	ErrTlsReqd = 0x80000005,
	ErrUnknown = 0x80000006,
	ErrShutdown = 0x80000007,
	ErrBlockSizeReqd = 0x80000008,
	ErrTooBig = 0x80000009,
};

enum class Info : uint16_t {
	Export = 0,
	Name = 1,
	Description = 2,
	BlockSize = 3,
};

enum class Cmd : uint16_t {
	Read = 0,
	Write = 1,
	Disc = 2,
	Flush = 3,
	Trim = 4,
	Cache = 5,
	WriteZeroes = 6,
	BlockStatus = 7,
};

// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Structured reply.
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
enum class ReplyType : uint16_t {
	None = 0,
	OffsetData = 1,
	OffsetHole = 2,
	BlockStatus = 5,
	Error = 0x8001,
	ErrorOffset = 0x8002,
};

// base:allocation flags.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;

// Errors the protocol allows on the wire.
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEnomem = 12;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;
inline constexpr uint32_t kEoverflow = 75;
inline constexpr uint32_t kEnotsup = 95;
inline constexpr uint32_t kEshutdown = 108;

inline constexpr uint32_t kRequestHeaderSize = 28;
inline constexpr uint32_t kSimpleReplyHeaderSize = 16;
inline constexpr uint32_t kStructuredReplyHeaderSize = 20;
inline constexpr uint32_t kMaxStringLength = 4096;

inline constexpr const char *kMetaBaseAllocation = "base:allocation";
// Our meta context ids: base:allocation is 1, context i of an export's MetaSource 2 + i.
inline constexpr uint32_t kMetaIdBaseAllocation = 1;
inline constexpr uint32_t kMetaIdFirstSource = 2;

} // namespace r3d::nbd
