// libFuzzer target for the migration service's decoders (libr3d/migration/messages.hpp):
// every message type, checked against a region, plus the chunk set assembler fed with the
// windows that pass. Invariants: nothing outside the region or over the caps is accepted,
// an accepted message re-encodes to one that decodes to the same values, chunk lists are
// ascending and inside their window, and nothing crashes or leaks (ASan/UBSan).
//
// Input: byte 0 picks the message type, byte 1 the region; the rest is the message.
// With R3_WRITE_SEEDS=DIR set, it writes a seed corpus of valid messages and exits.

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <span>
#include <string>

#include "migration/chunk_set_assembler.hpp"
#include "migration/messages.hpp"
#include "migration/wire.hpp"

using namespace r3d::migration;

namespace {

void check(bool ok)
{
	if (!ok)
		std::abort();
}

RegionShape regionOf(uint8_t pick)
{
	switch (pick % 3) {
	case 0:
		return { 1000 * 4096 + 100, 4096 };
	case 1:
		return { 3 * kWindowChunks * 512 + 7, 512 };
	default:
		return { 64ull << 20, 65536 };
	}
}

std::span<const std::byte> bytes(const std::string &s)
{
	return std::as_bytes(std::span(s.data(), s.size()));
}

void checkWindow(const ChunkWindow &w, const RegionShape &region)
{
	check(w.first < w.end && w.end <= region.chunks() && w.end - w.first <= kWindowChunks);
	for (size_t i = 0; i < w.chunks.size(); ++i) {
		check(w.chunks[i] >= w.first && w.chunks[i] < w.end);
		check(i == 0 || w.chunks[i] > w.chunks[i - 1]);
	}
}

void writeSeeds(const std::string &dir)
{
	auto seed = [&](const std::string &name, uint8_t type, const std::string &meta) {
		std::ofstream(dir + "/" + name, std::ios::binary) << static_cast<char>(type) << '\0' << meta;
	};
	seed("hello", 0, encode(MigrationHello{ kMigrationVersion, "mig", "leecher", 1000 * 4096 + 100, 4096, 1 }));
	seed("hello-reply", 1, encode(MigrationHelloReply{ 0, "", "mig", 1000 * 4096 + 100, 4096, 2, 3, false }));
	seed("dirty-runs", 2, encode(DirtyList{ 1, 1, ChunkWindow{ 0, 1001, { 1, 2, 3, 700, 1000 } }, true }));
	ChunkWindow dense{ 0, 1001, {} };
	for (uint64_t c = 0; c < 1001; c += 3)
		dense.chunks.push_back(c);
	seed("dirty-bitmap", 2, encode(DirtyList{ 2, 1, dense, false }));
	seed("request", 3, encode(FinalizeRequest{ "mig", "leecher", 1, 4 }));
	seed("ack", 4, encode(FinalizeAck{ 0, "", 2, 4 }));
	seed("commit", 5, encode(FinalizeCommit{ "mig", "leecher", 2 }));
	seed("commit-ack", 6, encode(FinalizeCommitAck{ 0, "", 2 }));
	seed("round-request", 8, encode(RoundRequest{ 3 }));
	seed("resume", 7, encode(Resume{ "mig", "leecher", 2, 4, ChunkWindow{ 0, 1001, { 5, 6 } }, true }));
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
	if (const char *dir = std::getenv("R3_WRITE_SEEDS")) {
		writeSeeds(dir);
		std::exit(0);
	}
	return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const RegionShape region = regionOf(data[1]);
	auto meta = std::as_bytes(std::span(data + 2, size - 2));
	// Every input is also a migration frame's meta (wire.hpp): the envelope is the first
	// decoder a frame meets. (Outside the switch, so the corpus keeps its meaning.)
	if (auto w = decodeWire(meta)) {
		check(w->body.size() <= kMaxMigrationMeta);
		std::string frame;
		appendWire(frame, w->type, w->body, true);
		auto again = decodeWire(bytes(frame.substr(r3d::transport::kFrameHeaderSize)));
		check(again && again->type == w->type && again->body == w->body);
	}
	switch (data[0] % 9) {
	case 0:
		if (auto m = decodeMigrationHello(meta)) {
			check(!m->migrationId.empty() && m->migrationId.size() <= kMaxIdLength);
			auto again = decodeMigrationHello(bytes(encode(*m)));
			check(again && again->leecherId == m->leecherId && again->epoch == m->epoch);
		}
		break;
	case 1:
		if (auto m = decodeMigrationHelloReply(meta)) {
			if (m->error == 0)
				check(checkRegion({ m->regionSize, m->chunkSize }).has_value() && m->epoch > 0);
			auto again = decodeMigrationHelloReply(bytes(encode(*m)));
			check(again && again->epoch == m->epoch && again->error == m->error);
		}
		break;
	case 2:
		if (auto m = decodeDirtyList(meta, region)) {
			checkWindow(m->chunks, region);
			auto again = decodeDirtyList(bytes(encode(*m)), region);
			check(again && again->chunks.chunks == m->chunks.chunks && again->last == m->last);
			ChunkSetAssembler a(region.chunks());
			check(a.add(m->chunks, m->last, m->round, m->epoch).has_value());
			// The same window again overlaps: always refused.
			check(!a.add(m->chunks, true, m->round, m->epoch).has_value());
		}
		break;
	case 3:
		if (auto m = decodeFinalizeRequest(meta))
			check(m->epoch > 0 && !m->leecherId.empty());
		break;
	case 4:
		if (auto m = decodeFinalizeAck(meta))
			check(m->error != 0 || m->epoch > 0);
		break;
	case 5:
		if (auto m = decodeFinalizeCommit(meta))
			check(m->epoch > 0);
		break;
	case 6:
		if (auto m = decodeFinalizeCommitAck(meta))
			check(m->error >= 0 && m->message.size() <= kMaxMessageText);
		break;
	case 8:
		if (auto m = decodeRoundRequest(meta)) {
			auto again = decodeRoundRequest(bytes(encode(*m)));
			check(again && again->appliedRound == m->appliedRound);
		}
		break;
	default:
		if (auto m = decodeResume(meta, region)) {
			checkWindow(m->held, region);
			auto again = decodeResume(bytes(encode(*m)), region);
			check(again && again->held.chunks == m->held.chunks);
		}
		break;
	}
	return 0;
}
