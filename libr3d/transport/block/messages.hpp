#pragma once

// The block service's messages as plain structs, so only messages.cpp sees protobuf. What
// each op means and how it is checked and run is in ops.hpp.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "transport/frame.hpp"

namespace r3d::transport {

/// 2: frames carry a stream id, the hello names a service.
inline constexpr uint32_t kProtocolVersion = 2;
/// The service name of the block RPC in Hello::service.
inline constexpr const char *kBlockService = "block";
/// Length of Hello::session.
inline constexpr size_t kSessionIdSize = 16;
/// Most ranges one READ_RANGES request may carry.
inline constexpr size_t kMaxRanges = 1024;
/// Largest hello or hello reply message.
inline constexpr uint32_t kMaxHelloMeta = 8 * 1024;

enum class Op : uint32_t {
	Read = 1,
	Write = 2,
	Size = 3,
	Sync = 4,
	Trim = 5,
	WriteZeroes = 6,
	ReadRanges = 7,
};

struct IoRange {
	uint64_t offset = 0;
	uint64_t length = 0;
};

struct Hello {
	uint32_t version = kProtocolVersion;
	std::string exportName;
	std::string token;
	std::string clientName;
	/// Empty, or kSessionIdSize random bytes: with slot and incarnation, lets the server fence
	/// the connections this one replaces.
	std::string session;
	uint32_t slot = 0;
	uint64_t incarnation = 0;
	/// Which of the server's services the connection is for.
	std::string service = kBlockService;
};

struct HelloReply {
	int error = 0;
	std::string message;
	uint64_t size = 0;
	uint64_t chunkSize = 0;
	uint32_t maxPayload = 0;
	uint32_t maxInFlight = 0;
	bool readOnly = false;
	std::string server;
	bool fenced = false;
};

struct Request {
	uint64_t id = 0;
	Op op = Op::Read; ///< may hold a value outside the enum when decoded from a peer
	uint64_t offset = 0;
	uint64_t length = 0;
	std::vector<IoRange> ranges;
};

struct Response {
	uint64_t id = 0;
	int error = 0;
	uint64_t size = 0;
};

/// Append a whole frame header plus message to `out`; `payloadLength` raw bytes are
/// announced and must follow (the caller sends them).
void appendFrame(std::string &out, const Hello &m);
void appendFrame(std::string &out, const HelloReply &m);
void appendFrame(std::string &out, const Request &m, uint32_t payloadLength);
void appendFrame(std::string &out, const Response &m, uint32_t payloadLength);

/// Parse a message; fails with EPROTO and the reason when it is not valid protobuf or
/// breaks a structural rule (e.g. more than kMaxRanges ranges).
ResultMsg<Hello> decodeHello(std::span<const std::byte> meta);
ResultMsg<HelloReply> decodeHelloReply(std::span<const std::byte> meta);
ResultMsg<Request> decodeRequest(std::span<const std::byte> meta);
ResultMsg<Response> decodeResponse(std::span<const std::byte> meta);

} // namespace r3d::transport
