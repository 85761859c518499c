#include "transport/frame.hpp"

#include <fmt/format.h>

namespace r3d::transport {

namespace {

uint32_t loadLe32(const std::byte *p)
{
	return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
	       static_cast<uint32_t>(p[3]) << 24;
}

void storeLe32(std::byte *p, uint32_t v)
{
	for (int i = 0; i < 4; ++i)
		p[i] = static_cast<std::byte>(v >> (8 * i));
}

} // namespace

const char *frameKindName(FrameKind kind)
{
	switch (kind) {
	case FrameKind::Hello:
		return "hello";
	case FrameKind::HelloReply:
		return "hello reply";
	case FrameKind::Request:
		return "request";
	case FrameKind::Response:
		return "response";
	}
	return "unknown";
}

ResultMsg<FrameHeader> decodeFrameHeader(FrameHeaderBytes bytes, FrameKind expected, const FrameLimits &limits)
{
	if (bytes[0] == kTlsHandshakeByte)
		return fail(EPROTO, "the peer started a TLS handshake, but this side does not use TLS");
	if (bytes[0] != kFrameMagic0 || bytes[1] != kFrameMagic1)
		return fail(EPROTO, fmt::format("not an r3 frame (starts with {:#04x} {:#04x})",
						static_cast<unsigned>(bytes[0]), static_cast<unsigned>(bytes[1])));
	if (static_cast<uint8_t>(bytes[2]) != kFrameVersion)
		return fail(EPROTONOSUPPORT, fmt::format("frame version {} is not supported (this side speaks {})",
							 static_cast<unsigned>(bytes[2]), kFrameVersion));
	FrameHeader h;
	h.kind = static_cast<FrameKind>(bytes[3]);
	h.metaLength = loadLe32(bytes.data() + 4);
	h.payloadLength = loadLe32(bytes.data() + 8);
	h.stream = loadLe32(bytes.data() + 12);
	if (h.kind != expected)
		return fail(EPROTO, fmt::format("expected a {} frame, got kind {}", frameKindName(expected),
						static_cast<unsigned>(bytes[3])));
	if (h.metaLength > limits.maxMeta)
		return fail(EMSGSIZE, fmt::format("{} frame declares a {}-byte message, over the limit of {}",
						  frameKindName(h.kind), h.metaLength, limits.maxMeta));
	if (h.payloadLength > limits.maxPayload)
		return fail(EMSGSIZE, fmt::format("{} frame declares a {}-byte payload, over the limit of {}",
						  frameKindName(h.kind), h.payloadLength, limits.maxPayload));
	if (h.stream > limits.maxStream)
		return fail(EPROTO, fmt::format("{} frame on stream {}, which is not open", frameKindName(h.kind),
						h.stream));
	return h;
}

void encodeFrameHeader(const FrameHeader &header, std::span<std::byte, kFrameHeaderSize> out)
{
	out[0] = kFrameMagic0;
	out[1] = kFrameMagic1;
	out[2] = static_cast<std::byte>(kFrameVersion);
	out[3] = static_cast<std::byte>(header.kind);
	storeLe32(out.data() + 4, header.metaLength);
	storeLe32(out.data() + 8, header.payloadLength);
	storeLe32(out.data() + 12, header.stream);
}

} // namespace r3d::transport
