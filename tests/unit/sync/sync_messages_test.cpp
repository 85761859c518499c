#include "sync/sync_messages.hpp"

#include <cstring>

#include <string>

#include <catch2/catch.hpp>

#include "sync.pb.h"
#include "sync/chunk_codec.hpp"

using namespace r3d::sync;

namespace {

std::span<const std::byte> bytes(const std::string &s)
{
	return std::as_bytes(std::span(s.data(), s.size()));
}

template <class R>
void requireRefused(const R &r, const std::string &words, int code = EPROTO)
{
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == code);
	CHECK_THAT(r.error().message, Catch::Contains(words));
}

SyncHello goodHello()
{
	return SyncHello{ kSyncVersion, "disk.img", 10 * 4096 + 7, 4096, kHashXxh3_128 };
}

} // namespace

TEST_CASE("a sync hello round-trips and is checked", "[sync-messages]")
{
	auto h = decodeSyncHello(bytes(encode(goodHello())));
	REQUIRE(h);
	CHECK(h->name == "disk.img");
	CHECK(h->size == 10 * 4096 + 7);

	auto bad = goodHello();
	bad.version = 2;
	// A version or hash the receiver does not speak: a refusal no retry gets past.
	requireRefused(decodeSyncHello(bytes(encode(bad))), "version 2", EPROTONOSUPPORT);
	bad = goodHello();
	bad.hashKind = 9;
	requireRefused(decodeSyncHello(bytes(encode(bad))), "hash kind", EPROTONOSUPPORT);
	for (const char *name : { "", "../x", "a/b", ".hidden" }) {
		bad = goodHello();
		bad.name = name;
		CHECK_FALSE(decodeSyncHello(bytes(encode(bad))));
	}
	bad = goodHello();
	bad.chunkSize = 100;
	requireRefused(decodeSyncHello(bytes(encode(bad))), "chunk size");
	bad.chunkSize = kMaxSyncChunk * 2;
	requireRefused(decodeSyncHello(bytes(encode(bad))), "chunk size");
	bad = goodHello();
	bad.size = (kMaxSyncChunks + 1) * 4096;
	requireRefused(decodeSyncHello(bytes(encode(bad))), "chunks");
	requireRefused(decodeSyncHello(bytes(std::string(kMaxSyncMeta + 1, 'x'))), "over the limit");
	requireRefused(decodeSyncHello(bytes(std::string("\xff\xff\xff", 3))), "malformed");
}

TEST_CASE("a hello reply's hash count must match the copy", "[sync-messages]")
{
	SyncHelloReply r{ 0, "", 3, 4096 * 2 + 1, 3 };
	auto ok = decodeSyncHelloReply(bytes(encode(r)), 4096);
	REQUIRE(ok);
	CHECK(ok->generation == 3);
	r.hashCount = 2;
	requireRefused(decodeSyncHelloReply(bytes(encode(r)), 4096), "3 chunks");
	SyncHelloReply refused{ ENOSPC, "full", 0, 0, 0 };
	auto no = decodeSyncHelloReply(bytes(encode(refused)), 4096);
	REQUIRE(no);
	CHECK(no->error == ENOSPC);
	refused.error = 99999;
	requireRefused(decodeSyncHelloReply(bytes(encode(refused)), 4096), "not an errno");
}

TEST_CASE("hashes are whole and inside the copy", "[sync-messages]")
{
	const SyncShape shape{ 10 * 4096, 4096 };
	std::vector<ChunkHash> hashes{ { 1, 2 }, { 3, 4 } };
	auto payload = hashPayload(hashes, 0, 2);
	auto m = decodeSyncHashes(bytes(encode(SyncHashes{ 8, true, {} })), bytes(payload), shape);
	REQUIRE(m);
	CHECK(m->hashes == hashes);
	requireRefused(decodeSyncHashes(bytes(encode(SyncHashes{ 9, true, {} })), bytes(payload), shape), "outside");
	requireRefused(decodeSyncHashes(bytes(encode(SyncHashes{ 0, true, {} })), bytes(payload.substr(1)), shape),
		       "whole");
}

TEST_CASE("a generation's chunk list and chunks are checked against its size", "[sync-messages]")
{
	SyncBegin b{ 2, 5 * 4096 + 1, { 0, 6, { 1, 2, 5 } }, true };
	auto m = decodeSyncBegin(bytes(encode(b)), 4096);
	REQUIRE(m);
	CHECK(m->chunks.chunks == std::vector<uint64_t>{ 1, 2, 5 });
	CHECK(m->size == 5 * 4096 + 1);

	b.generation = 0;
	requireRefused(decodeSyncBegin(bytes(encode(b)), 4096), "generation 0");
	// A window past the new size's chunks.
	r3::v1::SyncBegin pb;
	pb.set_generation(1);
	pb.set_size(4096 * 2);
	pb.mutable_chunks()->set_window_first(0);
	pb.mutable_chunks()->set_window_end(3);
	requireRefused(decodeSyncBegin(bytes(pb.SerializeAsString()), 4096), "outside");

	const SyncShape shape{ 5 * 4096 + 1, 4096 };
	auto c = decodeSyncChunk(bytes(encode(SyncChunk{ 2, 5 })), 1, shape);
	REQUIRE(c);
	CHECK(c->index == 5);
	requireRefused(decodeSyncChunk(bytes(encode(SyncChunk{ 2, 6 })), 4096, shape), "outside");
	requireRefused(decodeSyncChunk(bytes(encode(SyncChunk{ 2, 1 })), 4095, shape), "4095 bytes");
	requireRefused(decodeSyncChunk(bytes(encode(SyncChunk{ 0, 1 })), 4096, shape), "generation 0");
}

TEST_CASE("a sync frame names a known type and carries a payload only where one belongs", "[sync-messages]")
{
	std::string out;
	appendSyncFrame(out, SyncType::Commit, encode(SyncCommit{ 4 }), 0, true);
	REQUIRE(out.size() > r3d::transport::kFrameHeaderSize);
	const std::string metaText = out.substr(r3d::transport::kFrameHeaderSize);
	auto meta = bytes(metaText);
	auto f = decodeSyncFrame(meta, 0);
	REQUIRE(f);
	CHECK(f->type == SyncType::Commit);
	auto commit = decodeSyncCommit(f->bytes());
	REQUIRE(commit);
	CHECK(commit->generation == 4);
	requireRefused(decodeSyncFrame(meta, 10), "payload");

	r3::v1::SyncFrame pb;
	pb.set_type(99);
	requireRefused(decodeSyncFrame(bytes(pb.SerializeAsString()), 0), "unknown type");
	pb.set_type(static_cast<uint32_t>(SyncType::Chunk));
	requireRefused(decodeSyncFrame(bytes(pb.SerializeAsString()), kMaxSyncChunk + 1), "over the limit");
}

TEST_CASE("an ack carries an errno or a generation", "[sync-messages]")
{
	auto a = decodeSyncAck(bytes(encode(SyncAck{ 3, 0, "" })));
	REQUIRE(a);
	CHECK(a->generation == 3);
	auto e = decodeSyncAck(bytes(encode(SyncAck{ 0, ENOSPC, "no space" })));
	REQUIRE(e);
	CHECK(e->error == ENOSPC);
	requireRefused(decodeSyncAck(bytes(encode(SyncAck{ 0, 0, "" }))), "generation 0");
	requireRefused(decodeSyncAck(bytes(encode(SyncAck{ 1, 0, std::string(kMaxMessageText + 1, 'x') }))),
		       "over the limit");
}

TEST_CASE("a zstd chunk is taken only when agreed, and only shorter than the chunk", "[sync-messages]")
{
	const SyncShape shape{ 5 * 4096 + 1, 4096 };
	SyncChunk z{ 2, 1, kEncodingZstd };
	requireRefused(decodeSyncChunk(bytes(encode(z)), 100, shape), "not agreed");
	auto c = decodeSyncChunk(bytes(encode(z)), 100, shape, kEncodingsKnown);
	REQUIRE(c);
	CHECK(c->encoding == kEncodingZstd);
	requireRefused(decodeSyncChunk(bytes(encode(z)), 4096, shape, kEncodingsKnown), "not fewer");
	requireRefused(decodeSyncChunk(bytes(encode(z)), 0, shape, kEncodingsKnown), "not fewer");
	requireRefused(decodeSyncChunk(bytes(encode(SyncChunk{ 2, 1, 7 })), 100, shape, kEncodingsKnown), "not agreed");
	// A reply may take only encodings this side knows.
	SyncHelloReply reply{ 0, "", 0, 4096, 1, 1u << 5 };
	requireRefused(decodeSyncHelloReply(bytes(encode(reply)), 4096), "unknown chunk encodings");
	reply.encodings = kEncodingsKnown;
	REQUIRE(decodeSyncHelloReply(bytes(encode(reply)), 4096));
}

TEST_CASE("zstd chunks round-trip, and a frame of another length is refused", "[sync-messages]")
{
	std::vector<std::byte> chunk(65536);
	for (size_t i = 0; i < chunk.size(); ++i)
		chunk[i] = std::byte(static_cast<unsigned char>("r3map sync "[i % 11]));
	auto packed = compressChunk(chunk);
	REQUIRE(packed);
	CHECK(packed->size() < chunk.size() / 10);
	std::vector<std::byte> out(chunk.size());
	REQUIRE(decompressChunk(bytes(*packed), out));
	CHECK(out == chunk);
	// Into a buffer of another length: the declared size does not match.
	std::vector<std::byte> small(4096);
	requireRefused(decompressChunk(bytes(*packed), small), "declares 65536");
	// Garbage, and a truncated frame.
	std::string junk(100, 'x');
	requireRefused(decompressChunk(bytes(junk), out), "not one zstd frame");
	requireRefused(decompressChunk(bytes(packed->substr(0, packed->size() / 2)), out), "zstd chunk");
	// Random bytes do not shrink: sent raw.
	std::vector<std::byte> noise(65536);
	uint64_t x = 88172645463325252ull;
	for (auto &b : noise) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b = std::byte(x);
	}
	CHECK_FALSE(compressChunk(noise));
}
