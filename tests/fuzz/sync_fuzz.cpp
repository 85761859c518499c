// libFuzzer target for the sync service's decoders (libr3d/sync/sync_messages.hpp): the
// frame envelope and every message, checked against a copy's shape. Invariants: nothing
// outside the copy or over the caps is accepted, an accepted message re-encodes to one
// that decodes to the same values, chunk lists are ascending and inside their window.
//
// Input: byte 0 picks the message type, byte 1 the shape, bytes 2-3 the payload length
// (for hashes: that many bytes of the input after the message are the payload); the rest
// is the message. With R3_WRITE_SEEDS=DIR set, it writes a seed corpus and exits.

#include <cstdint>
#include <span>
#include <string>

#include "fuzz_support.hpp"
#include "sync/sync_messages.hpp"

using namespace r3d::sync;
using r3fuzz::check;

namespace {

SyncShape shapeOf(uint8_t pick)
{
	switch (pick % 3) {
	case 0:
		return { 1000 * 4096 + 100, 4096 };
	case 1:
		return { 0, 65536 };
	default:
		return { 64ull << 20, 1 << 20 };
	}
}

std::span<const std::byte> bytes(const std::string &s)
{
	return std::as_bytes(std::span(s.data(), s.size()));
}

void writeSeeds(const std::string &dir)
{
	auto seed = [&](const std::string &name, uint8_t type, uint16_t payload, const std::string &meta) {
		std::string prefix{ static_cast<char>(type), '\0', static_cast<char>(payload & 0xff),
				    static_cast<char>(payload >> 8) };
		r3fuzz::writeSeed(dir, name, prefix, meta);
	};
	seed("hello", 1, 0, encode(SyncHello{ kSyncVersion, "disk.img", 4096 * 10, 4096, kHashXxh3_128 }));
	seed("hello-reply", 2, 0, encode(SyncHelloReply{ 0, "", 3, 1000 * 4096 + 100, 1001 }));
	seed("hashes", 3, 32, encode(SyncHashes{ 5, true, {} }) + std::string(32, 'h'));
	seed("begin", 4, 0, encode(SyncBegin{ 2, 4096 * 1001, { 0, 1001, { 1, 2, 3, 900 } }, true }));
	seed("chunk", 5, 4096, encode(SyncChunk{ 2, 7 }));
	seed("commit", 6, 0, encode(SyncCommit{ 9 }));
	seed("ack", 7, 0, encode(SyncAck{ 9, 0, "" }));
	std::string frame;
	appendSyncFrame(frame, SyncType::Commit, encode(SyncCommit{ 1 }), 0, true);
	seed("frame", 0, 0, frame.substr(r3d::transport::kFrameHeaderSize));
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
	return r3fuzz::seedsOnRequest(writeSeeds);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	const uint8_t type = data[0];
	const SyncShape shape = shapeOf(data[1]);
	const uint32_t payloadLength = data[2] | (uint32_t{ data[3] } << 8);
	std::string input(reinterpret_cast<const char *>(data + 4), size - 4);
	auto meta = bytes(input);
	switch (type % 8) {
	case 0: {
		auto f = decodeSyncFrame(meta, payloadLength);
		if (f) {
			check(f->body.size() <= kMaxSyncMeta);
			check(f->payloadLength == 0 || f->type == SyncType::Hashes || f->type == SyncType::Chunk);
		}
		break;
	}
	case 1: {
		auto h = decodeSyncHello(meta);
		if (h) {
			check(static_cast<bool>(checkSyncName(h->name)));
			check(SyncShape{ h->size, h->chunkSize }.chunks() <= kMaxSyncChunks);
			auto again = decodeSyncHello(bytes(encode(*h)));
			check(again && again->name == h->name && again->size == h->size && again->chunkSize == h->chunkSize);
		}
		break;
	}
	case 2: {
		auto r = decodeSyncHelloReply(meta, shape.chunk);
		if (r && !r->error)
			check(r->hashCount == SyncShape{ r->size, shape.chunk }.chunks());
		break;
	}
	case 3: {
		size_t n = std::min<size_t>(payloadLength, input.size());
		auto h = decodeSyncHashes(meta.subspan(0, input.size() - n), meta.subspan(input.size() - n), shape);
		if (h)
			check(h->first + h->hashes.size() <= shape.chunks());
		break;
	}
	case 4: {
		auto b = decodeSyncBegin(meta, shape.chunk);
		if (b) {
			SyncShape s{ b->size, shape.chunk };
			check(b->generation > 0 && b->chunks.end <= s.chunks());
			for (size_t i = 0; i < b->chunks.chunks.size(); ++i) {
				check(b->chunks.chunks[i] >= b->chunks.first && b->chunks.chunks[i] < b->chunks.end);
				check(i == 0 || b->chunks.chunks[i] > b->chunks.chunks[i - 1]);
			}
			if (s.chunks() > 0) {
				auto again = decodeSyncBegin(bytes(encode(*b)), shape.chunk);
				check(again && again->chunks.chunks == b->chunks.chunks && again->size == b->size);
			}
		}
		break;
	}
	case 5: {
		auto c = decodeSyncChunk(meta, payloadLength, shape);
		if (c)
			check(c->index < shape.chunks() && payloadLength == shape.lengthOf(c->index));
		break;
	}
	case 6: {
		auto c = decodeSyncCommit(meta);
		if (c)
			check(c->generation > 0);
		break;
	}
	default: {
		auto a = decodeSyncAck(meta);
		if (a) {
			check(a->message.size() <= kMaxMessageText);
			check(a->error != 0 || a->generation > 0);
		}
		break;
	}
	}
	return 0;
}
