#pragma once

// The transport's framing: every frame is a fixed 16-byte header, a protobuf message of
// `metaLength` bytes and `payloadLength` raw bytes.
//
//   0  'R' '3'        magic; its first byte is not 0x16, so a TLS ClientHello is told apart
//   2  version (2)
//   3  kind           FrameKind
//   4  metaLength     u32 little-endian, at most FrameLimits::maxMeta
//   8  payloadLength  u32 little-endian, at most FrameLimits::maxPayload
//  12  stream         u32 little-endian, at most FrameLimits::maxStream
//
// Both lengths and the stream are checked against the limits before anything is allocated
// or acted on, so a peer cannot make us reserve memory by declaring a large frame. The
// stream id lets one connection carry several streams of a service later (sync); the hello
// and today's block service use stream 0 only.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <r3d/result.hpp>

#include "base/limits.hpp"

namespace r3d::transport {

inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr uint8_t kFrameVersion = 2;
inline constexpr std::byte kFrameMagic0{ 'R' };
inline constexpr std::byte kFrameMagic1{ '3' };
/// First byte of a TLS handshake record.
inline constexpr std::byte kTlsHandshakeByte{ 0x16 };

enum class FrameKind : uint8_t {
	Hello = 1,
	HelloReply = 2,
	Request = 3,
	Response = 4,
};

struct FrameLimits {
	static constexpr uint32_t kDefaultMaxMeta = 64 * 1024;
	static constexpr uint32_t kDefaultMaxPayload = limits::kDefaultMaxPayload;

	uint32_t maxMeta = kDefaultMaxMeta;
	uint32_t maxPayload = kDefaultMaxPayload;
	/// Highest stream id the reader has open; a frame on any other is a framing error.
	uint32_t maxStream = 0;
};

struct FrameHeader {
	FrameKind kind = FrameKind::Request;
	uint32_t metaLength = 0;
	uint32_t payloadLength = 0;
	uint32_t stream = 0;
};

using FrameHeaderBytes = std::span<const std::byte, kFrameHeaderSize>;

/// Checks magic, version, kind (must be `expected`), both lengths and the stream against `limits`.
/// The message says what was wrong, for the log line that closes the connection.
ResultMsg<FrameHeader> decodeFrameHeader(FrameHeaderBytes bytes, FrameKind expected, const FrameLimits &limits);

void encodeFrameHeader(const FrameHeader &header, std::span<std::byte, kFrameHeaderSize> out);

const char *frameKindName(FrameKind kind);

} // namespace r3d::transport
