#pragma once

// The wire format between an app mapping a region served by r3mapd (DaemonRegion) and the
// daemon's RegionManager: one SOCK_SEQPACKET connection per region, one datagram per
// message, fixed little-endian fields, the userfaultfd riding the Map request as
// SCM_RIGHTS. Every datagram is at most kMaxMessage bytes; decoding checks every length
// against what was received, so a truncated or oversized message is an error, never a
// read past the buffer.
//
//   header   magic u32 'R3RG' | version u16 | type u16 | body length u32
//   Map      base u64 | size u64 | features u64 | client fd i32 | flags u32 | remote timeout ms u32
//            | write-back interval ms u32 (version 2 only) | source length u32 | source
//   Sync, Unmap: no body
//   Reply    status i32 (0, or an r3mapd Errc) | id length u32 | message length u32 | id | message
//
// Version 2 added the write-back interval; version 1 requests are still taken (interval 0,
// the daemon's default). Every message is sent as version 2.
//
// The connection is the region's lifetime: the daemon frees the region when it closes,
// and the app sees the daemon go away when it does.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::uffd {

inline constexpr uint32_t kRegionMagic = 0x47523352; // "R3RG"
inline constexpr uint16_t kRegionVersion = 2;
/// The oldest version decoded.
inline constexpr uint16_t kRegionMinVersion = 1;
inline constexpr size_t kRegionHeaderSize = 12;
/// Longest backend URI or mount id a Map request carries.
inline constexpr size_t kMaxRegionSource = 4096;
inline constexpr size_t kMaxRegionMessage = kRegionHeaderSize + 40 + kMaxRegionSource;
/// The longest remote timeout an app may ask for.
inline constexpr uint32_t kMaxRegionRemoteTimeoutMs = 600'000;

/// Pull only what faults ask for, not the rest of the region behind them.
inline constexpr uint32_t kRegionNoBackground = 1;
/// Track the app's writes and write them back: the app registered the range for WP too;
/// WP_ASYNC among its features means wp-async, else wp-sync.
inline constexpr uint32_t kRegionTrackWrites = 2;
/// The longest write-back interval an app may ask for.
inline constexpr uint32_t kMaxRegionWriteBackMs = 3'600'000;

enum class RegionMessage : uint16_t {
	Map = 1,
	Sync = 2,
	Unmap = 3,
	Reply = 4,
};

struct RegionMapRequest {
	uint64_t base = 0;     ///< the mapping's address in the app
	uint64_t size = 0;     ///< its length
	uint64_t features = 0; ///< the UFFD_FEATURE_* the app's handshake got
	int32_t clientFd = -1; ///< the uffd's number in the app (the daemon checks the app holds it)
	uint32_t flags = 0;    ///< kRegionNoBackground, kRegionTrackWrites
	/// How long a fault retries a failing backend before SIGBUS; 0: r3mapd's default.
	uint32_t remoteTimeoutMs = 0;
	/// How often dirty pages are written back; 0: r3mapd's default (with kRegionTrackWrites).
	uint32_t writeBackMs = 0;
	/// Never write back on an interval, only on Sync (with kRegionTrackWrites).
	static constexpr uint32_t kNoInterval = UINT32_MAX;
	std::string source;    ///< a backend URI
};

struct RegionReply {
	int32_t status = 0;
	std::string id;
	std::string message;
};

std::vector<uint8_t> encodeHeaderOnly(RegionMessage type);
std::vector<uint8_t> encodeMap(const RegionMapRequest &request);
std::vector<uint8_t> encodeReply(const RegionReply &reply);

/// The type of a received datagram, checking magic, version and that the body length is
/// exactly what arrived.
ResultMsg<RegionMessage> decodeType(std::span<const uint8_t> message);
ResultMsg<RegionMapRequest> decodeMap(std::span<const uint8_t> message);
ResultMsg<RegionReply> decodeReply(std::span<const uint8_t> message);

/// Sends one datagram, with `fd` as SCM_RIGHTS when it is not -1.
Result<void> sendRegionMessage(int socket, const std::vector<uint8_t> &message, int fd = -1);

struct ReceivedMessage {
	std::vector<uint8_t> bytes; ///< empty: the peer closed the connection
	UniqueFd fd;                ///< the one fd that came with it, if any
};
/// Receives one datagram, waiting up to `timeoutMs` (-1: no limit; ETIMEDOUT after).
/// Fails with EMSGSIZE for a datagram longer than kMaxRegionMessage and EBADMSG when more
/// than one fd, or fds of another kind than SCM_RIGHTS, came with it (all of them closed).
ResultMsg<ReceivedMessage> receiveRegionMessage(int socket, int timeoutMs);

} // namespace r3d::uffd
