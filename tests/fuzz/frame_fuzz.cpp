// libFuzzer target for the r3 transport's decoding path: frame headers, messages and the
// server's request check, over a byte stream as either side would read it. Invariants:
// nothing past the caps is ever accepted, accepted requests re-encode to themselves, and
// nothing crashes or leaks (ASan/UBSan).
//
// With R3_WRITE_SEEDS=DIR set, it writes a seed corpus of valid conversations and exits.

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <span>
#include <string>

#include "fuzz_support.hpp"

#include "transport/frame.hpp"
#include "transport/block/messages.hpp"
#include "transport/block/ops.hpp"
#include "transport/block/request_check.hpp"

using namespace r3d::transport;
using r3fuzz::check;

namespace {

constexpr FrameLimits kLimits{ 4096, 65536 };

void writeSeeds(const std::string &dir)
{
	auto seed = [&](const std::string &name, uint8_t mode, const std::string &stream) {
		r3fuzz::writeSeed(dir, name, std::string(1, static_cast<char>(mode)), stream);
	};
	std::string client;
	appendFrame(client, Hello{ kProtocolVersion, "disk", "token", "fuzz" });
	appendFrame(client, Request{ 1, Op::Read, 4096, 4096, {} }, 0);
	appendFrame(client, Request{ 2, Op::Write, 0, 8, {} }, 8);
	client += "12345678";
	appendFrame(client, Request{ 3, Op::ReadRanges, 0, 0, { { 0, 4096 }, { 8192, 4096 } } }, 0);
	appendFrame(client, Request{ 4, Op::Trim, 0, 1 << 20, {} }, 0);
	appendFrame(client, Request{ 5, Op::Sync, 0, 0, {} }, 0);
	seed("client-bytes", 1, client);
	seed("client-chunked", 3, client);
	seed("client-readonly", 5, client);
	std::string server;
	HelloReply reply;
	reply.size = 1 << 20;
	reply.maxPayload = 65536;
	appendFrame(server, reply);
	appendFrame(server, Response{ 1, 0, 0 }, 4096);
	server += std::string(4096, 'x');
	appendFrame(server, Response{ 2, 28, 0 }, 0);
	seed("server", 0, server);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
	return r3fuzz::seedsOnRequest(writeSeeds);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	// The first byte picks the side (bit 0: server reading client frames) and the export.
	const uint8_t mode = data[0];
	const bool serverSide = mode & 1;
	const ExportGeometry g{ 1 << 20, (mode & 2) ? 4096u : 0u, kLimits.maxPayload, (mode & 4) != 0 };
	auto in = std::as_bytes(std::span(data + 1, size - 1));
	for (bool first = true; in.size() >= kFrameHeaderSize; first = false) {
		FrameKind kind = serverSide ? (first ? FrameKind::Hello : FrameKind::Request)
					    : (first ? FrameKind::HelloReply : FrameKind::Response);
		auto header = decodeFrameHeader(in.first<kFrameHeaderSize>(), kind, kLimits);
		if (!header)
			return 0; // the connection would be closed here
		check(header->metaLength <= kLimits.maxMeta && header->payloadLength <= kLimits.maxPayload &&
		      header->stream <= kLimits.maxStream);
		in = in.subspan(kFrameHeaderSize);
		if (in.size() < header->metaLength)
			return 0;
		auto meta = in.first(header->metaLength);
		in = in.subspan(header->metaLength);
		switch (kind) {
		case FrameKind::Hello:
			(void)decodeHello(meta);
			break;
		case FrameKind::HelloReply:
			(void)decodeHelloReply(meta);
			break;
		case FrameKind::Response:
			(void)decodeResponse(meta);
			break;
		case FrameKind::Request: {
			auto r = decodeRequest(meta);
			if (!r)
				return 0;
			check(r->ranges.size() <= kMaxRanges);
			if (checkRequest(*r, header->payloadLength, g) == 0) {
				// What the server would allocate for it stays under the cap.
				check(replyPayloadLength(*r) <= g.maxPayload);
				check(r->op != Op::Write || header->payloadLength == r->length);
				std::string again;
				appendFrame(again, *r, header->payloadLength);
				auto back = decodeRequest(std::as_bytes(std::span(again)).subspan(kFrameHeaderSize));
				check(back && back->id == r->id && back->op == r->op && back->offset == r->offset &&
				      back->length == r->length && back->ranges.size() == r->ranges.size());
			}
			break;
		}
		}
		in = in.subspan(std::min<size_t>(header->payloadLength, in.size()));
	}
	return 0;
}
