// The core pieces composed without a network: a seeder region written between rounds, two
// leechers (fork-many) doing a first pass and dirty rounds through their own fanout views,
// the controller deciding when to stop, the two-phase handover with the final list carried
// through the wire codec, post-copy on B, and the checks that matter: every acknowledged
// write is on the owner, the seeder wrote nothing after the commit, and the other leecher
// ends as an exact read-only copy of the finalized state.

#include <map>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "migration/chunk_set_assembler.hpp"
#include "migration/convergence_controller.hpp"
#include "migration/dirty_fanout.hpp"
#include "migration/leecher_handover.hpp"
#include "migration/messages.hpp"
#include "migration/migration_state.hpp"
#include "migration/seeder_handover.hpp"
#include "migration/tracking_dirty_source.hpp"
#include "test_support.hpp"

using namespace r3d;
using namespace r3d::migration;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kChunks = 64;
constexpr uint64_t kSize = kChunks * kChunk;
constexpr double kBandwidth = 64.0 * kChunk; // bytes per simulated second

std::shared_ptr<ReadWriterAt> memory()
{
	return std::shared_ptr<ReadWriterAt>(std::move(backends::MemoryBackend::create(kSize).value()));
}

std::vector<std::byte> readAll(ReadWriterAt &rw)
{
	std::vector<std::byte> out(kSize);
	REQUIRE(rw.readAt(out, 0));
	return out;
}

struct Leecher {
	std::string id;
	std::shared_ptr<ReadWriterAt> data = memory();
	std::shared_ptr<DirtySource> view;
	MigrationState state{ Role::Leecher };
	MigrationState seederSide{ Role::Seeder }; ///< the seeder's state for this leecher
	LeecherHandover handover;
	ConvergenceController controller{ ConvergenceOptions{ .downtimeBudget = 20ms, .maxRounds = 10 } };
	std::set<uint64_t> remote; ///< chunks B must still pull (post-copy)

	explicit Leecher(std::string name) : id(name), handover("mig", std::move(name)) {}
};

/// Copies chunks from the seeder into the leecher; returns the bytes sent.
uint64_t pull(ReadWriterAt &from, Leecher &b, const std::vector<uint64_t> &chunks)
{
	std::vector<std::byte> buf(kChunk);
	for (uint64_t c : chunks) {
		REQUIRE(from.readAt(buf, c * kChunk));
		REQUIRE(b.data->writeAt(buf, c * kChunk));
		b.remote.erase(c);
	}
	return chunks.size() * kChunk;
}

/// The final list as it travels: windows, each encoded, decoded and reassembled.
std::vector<uint64_t> overTheWire(const std::vector<uint64_t> &chunks, uint64_t round, uint64_t epoch)
{
	const RegionShape region{ kSize, kChunk };
	ChunkSetAssembler assembler(region.chunks());
	auto windows = splitWindows(chunks, region.chunks());
	for (size_t i = 0; i < windows.size(); ++i) {
		auto wire = encode(DirtyList{ round, epoch, windows[i], i + 1 == windows.size() });
		auto decoded = decodeDirtyList(std::as_bytes(std::span(wire.data(), wire.size())), region);
		REQUIRE(decoded);
		REQUIRE(assembler.add(decoded->chunks, decoded->last, decoded->round, decoded->epoch));
	}
	REQUIRE(assembler.complete());
	return assembler.take();
}

} // namespace

TEST_CASE("a simulated fork-many migration: one owner, one read-only copy, nothing lost", "[flow][fork-many]")
{
	auto seederData = memory();
	auto tracker = std::make_shared<stages::TrackingReadWriterAt>(seederData, kChunk);
	auto fanout = DirtyFanout::create(std::make_shared<TrackingDirtySource>(tracker));
	SeederHandover seeder("mig");
	std::vector<std::byte> expected(kSize); // every acknowledged write, wherever it went
	uint64_t record = 0;

	// The application: writes a record to the seeder while it may write.
	auto writeOnSeeder = [&](int n) {
		for (int i = 0; i < n; ++i, ++record) {
			uint64_t off = (record * 13 % kChunks) * kChunk + record % 7 * 100;
			auto data = r3test::pattern(300, static_cast<uint32_t>(record));
			REQUIRE(seeder.checkWrite());
			REQUIRE(tracker->writeAt(data, off));
			std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(off));
		}
	};

	Leecher b1("B1"), b2("B2");
	for (Leecher *b : { &b1, &b2 }) {
		CHECK(seeder.join(b->id) == LeecherStanding::Candidate);
		MigrationHelloReply hello{ 0, "", "mig", kSize, kChunk, seeder.epoch(), 0, false };
		REQUIRE(b->handover.welcomed(hello));
		b->view = fanout->addView();
		REQUIRE(b->view->start());
		for (uint64_t c = 0; c < kChunks; ++c)
			b->remote.insert(c);
	}
	writeOnSeeder(5); // written before the first pass: the pass reads it

	// First pass and pre-copy rounds, the writer slowing down (so the rounds converge).
	for (Leecher *b : { &b1, &b2 }) {
		std::vector<uint64_t> all(kChunks);
		for (uint64_t c = 0; c < kChunks; ++c)
			all[c] = c;
		uint64_t sent = pull(*tracker, *b, all);
		writeOnSeeder(16);
		auto dirty = b->view->pendingChunks() * kChunk;
		(void)b->controller.record(RoundSample{ dirty, sent, std::chrono::nanoseconds(int64_t(sent / kBandwidth * 1e9)) });
		REQUIRE(b->state.firstPassDone());
		REQUIRE(b->seederSide.firstPassDone());
	}
	int writes = 8;
	while (b1.controller.verdict().decision == Decision::Continue) {
		for (Leecher *b : { &b1, &b2 }) {
			auto round = b->view->take();
			REQUIRE(round);
			uint64_t sent = pull(*tracker, *b, round->chunks);
			if (b == &b1)
				writeOnSeeder(writes);
			auto dirty = b->view->pendingChunks() * kChunk;
			(void)b->controller.record(
				RoundSample{ dirty, sent, std::chrono::nanoseconds(int64_t(double(sent) / kBandwidth * 1e9)) });
			REQUIRE(b->state.roundDone());
			REQUIRE(b->seederSide.roundDone());
		}
		writes /= 2;
		REQUIRE(b1.controller.round() < 10);
	}
	CHECK(b1.controller.verdict().reason == FinalizeReason::DowntimeMet);

	// B1 asks to finalize; B2 asking meanwhile is refused.
	auto req = b1.handover.request(b1.state.round());
	REQUIRE(req);
	auto proposed = seeder.request(*req);
	REQUIRE(proposed);
	REQUIRE(b1.state.beginFinalize());
	REQUIRE(b1.seederSide.beginFinalize());
	auto req2 = b2.handover.request(b2.state.round());
	REQUIRE(req2);
	auto refused = seeder.request(*req2);
	REQUIRE_FALSE(refused);
	CHECK(refused.error().code.value() == EBUSY);
	REQUIRE_FALSE(b2.handover.acked(FinalizeAck{ refused.error().code.value(), refused.error().message, 0, 0 }));
	CHECK(seeder.checkWrite().error().code.value() == EBUSY); // locked: the writer waits

	// The final list, through the codec; B1 marks it remote and commits.
	REQUIRE(b1.handover.acked(FinalizeAck{ 0, "", *proposed, b1.state.round() }));
	auto final1 = b1.view->take();
	REQUIRE(final1);
	auto received = overTheWire(final1->chunks, b1.state.round(), *proposed);
	CHECK(received == final1->chunks);
	// (overTheWire checked each window's epoch and order; the handover needs only the last.)
	REQUIRE(b1.handover.finalList(DirtyList{ b1.state.round(), *proposed, {}, true }));
	for (uint64_t c : received)
		b1.remote.insert(c);
	auto commit = b1.handover.commit();
	REQUIRE(commit);
	REQUIRE(seeder.commit(*commit));
	CHECK_FALSE(b1.handover.mayWrite());
	REQUIRE(b1.handover.commitAcked(FinalizeCommitAck{ 0, "", seeder.epoch() }));
	REQUIRE(b1.handover.mayWrite());
	REQUIRE(b1.state.commit(true));
	REQUIRE(b1.seederSide.commit(true));
	const auto finalized = readAll(*seederData); // the state handed over
	CHECK(finalized == expected);

	// The seeder never writes again.
	CHECK(seeder.checkWrite().error().code.value() == EROFS);
	CHECK(seeder.standing("B2") == LeecherStanding::ReadOnlyCopy);

	// Post-copy on B1: the application goes on against B1; a write to a chunk still remote
	// pulls it first (demand), then the rest is pulled in the background.
	for (int i = 0; i < 20; ++i, ++record) {
		uint64_t chunk = record * 13 % kChunks;
		uint64_t off = chunk * kChunk + record % 7 * 100;
		if (b1.remote.count(chunk))
			(void)pull(*tracker, b1, { chunk });
		auto data = r3test::pattern(300, static_cast<uint32_t>(record));
		REQUIRE(b1.data->writeAt(data, off));
		std::copy(data.begin(), data.end(), expected.begin() + static_cast<std::ptrdiff_t>(off));
	}
	std::vector<uint64_t> rest(b1.remote.begin(), b1.remote.end());
	(void)pull(*tracker, b1, rest);
	REQUIRE(b1.remote.empty());
	REQUIRE(b1.state.complete());
	REQUIRE(b1.seederSide.complete());
	CHECK(readAll(*b1.data) == expected);

	// B2 gets the final list too and ends as a read-only copy of the finalized state.
	auto final2 = b2.view->take();
	REQUIRE(final2);
	(void)pull(*tracker, b2, overTheWire(final2->chunks, b2.state.round(), seeder.epoch()));
	REQUIRE(b2.state.beginFinalize());
	REQUIRE(b2.state.commit(false));
	REQUIRE(b2.state.complete());
	CHECK_FALSE(b2.state.owner());
	CHECK_FALSE(b2.handover.mayWrite());
	CHECK(readAll(*b2.data) == finalized);
	CHECK(readAll(*seederData) == finalized);
}
