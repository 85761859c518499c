#include "migration/messages.hpp"

#include <string>

#include <catch2/catch.hpp>

#include "migration.pb.h"
#include "migration/chunk_set_assembler.hpp"

using namespace r3d::migration;

namespace {

const RegionShape kRegion{ 1000 * 4096 + 100, 4096 }; // 1001 chunks, the last one short

std::span<const std::byte> bytes(const std::string &s)
{
	return std::as_bytes(std::span(s.data(), s.size()));
}

std::string dirtyWith(const r3::v1::ChunkSet &set, uint64_t epoch = 1)
{
	r3::v1::DirtyList pb;
	pb.set_round(1);
	pb.set_epoch(epoch);
	*pb.mutable_chunks() = set;
	return pb.SerializeAsString();
}

r3::v1::ChunkSet windowOf(uint64_t first, uint64_t end)
{
	r3::v1::ChunkSet set;
	set.set_window_first(first);
	set.set_window_end(end);
	return set;
}

void requireRefused(const r3d::ResultMsg<DirtyList> &r, const std::string &words)
{
	REQUIRE_FALSE(r);
	CHECK(r.error().code.value() == EPROTO);
	INFO(r.error().message);
	CHECK(r.error().message.find(words) != std::string::npos);
}

} // namespace

TEST_CASE("every message round-trips", "[messages]")
{
	MigrationHello hello{ kMigrationVersion, "mig", "leecher-1", kRegion.size, kRegion.chunk, 3 };
	auto h = decodeMigrationHello(bytes(encode(hello)));
	REQUIRE(h);
	CHECK(h->migrationId == "mig");
	CHECK(h->leecherId == "leecher-1");
	CHECK(h->regionSize == kRegion.size);
	CHECK(h->epoch == 3);

	MigrationHelloReply reply{ 0, "", "mig", kRegion.size, kRegion.chunk, 4, 9, true };
	auto hr = decodeMigrationHelloReply(bytes(encode(reply)));
	REQUIRE(hr);
	CHECK(hr->epoch == 4);
	CHECK(hr->round == 9);
	CHECK(hr->handedOver);

	auto rr = decodeRoundRequest(bytes(encode(RoundRequest{ 12 })));
	REQUIRE(rr);
	CHECK(rr->appliedRound == 12);
	CHECK_FALSE(decodeRoundRequest(bytes(std::string("\x08", 1)))); // truncated varint

	auto fr = decodeFinalizeRequest(bytes(encode(FinalizeRequest{ "mig", "l", 4, 9 })));
	REQUIRE(fr);
	CHECK(fr->round == 9);
	auto fa = decodeFinalizeAck(bytes(encode(FinalizeAck{ 0, "", 5, 9 })));
	REQUIRE(fa);
	CHECK(fa->epoch == 5);
	auto fc = decodeFinalizeCommit(bytes(encode(FinalizeCommit{ "mig", "l", 5 })));
	REQUIRE(fc);
	CHECK(fc->epoch == 5);
	auto fca = decodeFinalizeCommitAck(bytes(encode(FinalizeCommitAck{ EBUSY, "locked", 0 })));
	REQUIRE(fca);
	CHECK(fca->error == EBUSY);

	DirtyList dl{ 2, 5, ChunkWindow{ 0, 1001, { 0, 1, 2, 500, 1000 } }, true };
	auto d = decodeDirtyList(bytes(encode(dl)), kRegion);
	REQUIRE(d);
	CHECK(d->chunks.chunks == dl.chunks.chunks);
	CHECK(d->chunks.first == 0);
	CHECK(d->chunks.end == 1001);
	CHECK(d->last);

	Resume res{ "mig", "l", 5, 2, ChunkWindow{ 0, 1001, { 7, 8 } }, true };
	auto r = decodeResume(bytes(encode(res)), kRegion);
	REQUIRE(r);
	CHECK(r->held.chunks == res.held.chunks);
	CHECK(r->round == 2);
}

TEST_CASE("sparse sets travel as runs, dense scattered ones as a bitmap", "[messages]")
{
	const RegionShape big{ 262144ull * 4096, 4096 };
	ChunkWindow sparse{ 0, 262144, {} };
	for (uint64_t c = 1000; c < 2000; ++c)
		sparse.chunks.push_back(c); // one run
	auto sparseWire = encode(DirtyList{ 1, 1, sparse, true });
	CHECK(sparseWire.size() < 32);
	r3::v1::DirtyList pb;
	REQUIRE(pb.ParseFromString(sparseWire));
	CHECK(pb.chunks().runs_size() == 2);
	CHECK(pb.chunks().bitmap().empty());

	ChunkWindow scattered{ 0, 262144, {} };
	for (uint64_t c = 0; c < 262144; c += 2)
		scattered.chunks.push_back(c); // 131072 runs: the bitmap is smaller
	auto wire = encode(DirtyList{ 1, 1, scattered, true });
	REQUIRE(pb.ParseFromString(wire));
	CHECK(pb.chunks().runs_size() == 0);
	CHECK(pb.chunks().bitmap().size() == kMaxBitmapBytes);
	CHECK(wire.size() < kMaxMigrationMeta);
	auto back = decodeDirtyList(bytes(wire), big);
	REQUIRE(back);
	CHECK(back->chunks.chunks == scattered.chunks);
}

TEST_CASE("splitWindows cuts a set at window boundaries and skips empty windows", "[messages]")
{
	const uint64_t count = 3 * kWindowChunks + 10;
	auto w = splitWindows({ 1, 5, 2 * kWindowChunks + 3, 3 * kWindowChunks + 9 }, count);
	REQUIRE(w.size() == 3);
	CHECK(w[0].first == 0);
	CHECK(w[0].end == kWindowChunks);
	CHECK(w[0].chunks == std::vector<uint64_t>{ 1, 5 });
	CHECK(w[1].first == 2 * kWindowChunks);
	CHECK(w[2].end == count);
	CHECK(w[2].chunks == std::vector<uint64_t>{ 3 * kWindowChunks + 9 });

	auto empty = splitWindows({}, 10);
	REQUIRE(empty.size() == 1);
	CHECK(empty[0].first == 0);
	CHECK(empty[0].end == 10);
	CHECK(empty[0].chunks.empty());
}

TEST_CASE("the assembler joins windows in order and refuses anything else", "[messages]")
{
	ChunkSetAssembler a(3 * kWindowChunks);
	REQUIRE(a.add(ChunkWindow{ 0, kWindowChunks, { 1, 2 } }, false, 4, 2));
	CHECK_FALSE(a.complete());
	SECTION("in order")
	{
		REQUIRE(a.add(ChunkWindow{ 2 * kWindowChunks, 3 * kWindowChunks, { 2 * kWindowChunks } }, true, 4, 2));
		CHECK(a.complete());
		CHECK(a.round() == 4);
		CHECK(a.take() == std::vector<uint64_t>{ 1, 2, 2 * kWindowChunks });
		CHECK_FALSE(a.complete());
	}
	SECTION("overlapping")
	{
		auto r = a.add(ChunkWindow{ kWindowChunks - 1, 2 * kWindowChunks, {} }, true, 4, 2);
		REQUIRE_FALSE(r);
		CHECK(r.error().message.find("overlaps") != std::string::npos);
	}
	SECTION("another round spliced in")
	{
		auto r = a.add(ChunkWindow{ kWindowChunks, 2 * kWindowChunks, {} }, true, 5, 2);
		REQUIRE_FALSE(r);
		CHECK(r.error().message.find("round 5") != std::string::npos);
	}
	SECTION("after the last")
	{
		REQUIRE(a.add(ChunkWindow{ kWindowChunks, 2 * kWindowChunks, {} }, true, 4, 2));
		CHECK_FALSE(a.add(ChunkWindow{ 2 * kWindowChunks, 3 * kWindowChunks, {} }, true, 4, 2));
	}
	SECTION("outside the region")
	{
		CHECK_FALSE(a.add(ChunkWindow{ 2 * kWindowChunks, 3 * kWindowChunks + 1, {} }, true, 4, 2));
	}
}

TEST_CASE("dirty lists outside the region or malformed are refused", "[messages][validation]")
{
	SECTION("window past the region")
	{
		requireRefused(decodeDirtyList(bytes(dirtyWith(windowOf(0, 1002))), kRegion), "outside the region");
	}
	SECTION("empty window")
	{
		requireRefused(decodeDirtyList(bytes(dirtyWith(windowOf(5, 5))), kRegion), "empty or outside");
	}
	SECTION("window over the cap")
	{
		const RegionShape huge{ 4 * kWindowChunks * 4096, 4096 };
		requireRefused(decodeDirtyList(bytes(dirtyWith(windowOf(0, kWindowChunks + 1))), huge), "over the limit");
	}
	SECTION("run past the window end")
	{
		auto set = windowOf(0, 100);
		set.add_runs(90);
		set.add_runs(11);
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "past the window end");
	}
	SECTION("run whose gap overflows")
	{
		auto set = windowOf(0, 100);
		set.add_runs(~uint64_t{ 0 });
		set.add_runs(2);
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "past the window end");
	}
	SECTION("odd run values")
	{
		auto set = windowOf(0, 100);
		set.add_runs(1);
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "pairs");
	}
	SECTION("zero-length run, touching runs")
	{
		auto set = windowOf(0, 100);
		set.add_runs(1);
		set.add_runs(0);
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "length 0");
		auto touching = windowOf(0, 100);
		for (uint64_t v : { 1, 2, 0, 3 })
			touching.add_runs(v);
		requireRefused(decodeDirtyList(bytes(dirtyWith(touching)), kRegion), "gap 0");
	}
	SECTION("too many runs")
	{
		const RegionShape huge{ kWindowChunks * 4096, 4096 };
		auto set = windowOf(0, kWindowChunks);
		for (size_t i = 0; i <= kMaxRuns; ++i) {
			set.add_runs(1);
			set.add_runs(1);
		}
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), huge), "runs, over the limit");
	}
	SECTION("bitmap of the wrong size, padding bits set, both encodings")
	{
		auto set = windowOf(0, 10);
		set.set_bitmap(std::string(3, '\x01'));
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "needs 2");
		set.set_bitmap(std::string("\x01\x04", 2)); // bit 10 of a 10-chunk window
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "past the window");
		set.set_bitmap(std::string("\x01\x00", 2));
		set.add_runs(0);
		set.add_runs(1);
		requireRefused(decodeDirtyList(bytes(dirtyWith(set)), kRegion), "both runs and a bitmap");
	}
	SECTION("epoch 0 and no chunk set")
	{
		requireRefused(decodeDirtyList(bytes(dirtyWith(windowOf(0, 10), 0)), kRegion), "epoch 0");
		r3::v1::DirtyList pb;
		pb.set_epoch(1);
		requireRefused(decodeDirtyList(bytes(pb.SerializeAsString()), kRegion), "no chunk set");
	}
	SECTION("bitmap at the region's last chunk")
	{
		auto set = windowOf(1000, 1001);
		set.set_bitmap(std::string("\x01", 1));
		auto r = decodeDirtyList(bytes(dirtyWith(set)), kRegion);
		REQUIRE(r);
		CHECK(r->chunks.chunks == std::vector<uint64_t>{ 1000 });
	}
}

TEST_CASE("oversize and truncated messages are refused", "[messages][validation]")
{
	std::string huge(kMaxMigrationMeta + 1, '\0');
	auto r = decodeDirtyList(bytes(huge), kRegion);
	requireRefused(r, "over the limit");
	CHECK_FALSE(decodeMigrationHello(bytes(huge)));
	CHECK_FALSE(decodeResume(bytes(huge), kRegion));

	auto wire = encode(DirtyList{ 2, 5, ChunkWindow{ 0, 1001, { 3, 4, 900 } }, true });
	for (size_t cut = 1; cut < wire.size(); ++cut) {
		auto part = decodeDirtyList(bytes(wire.substr(0, cut)), kRegion);
		// A cut breaks the protobuf, drops a field the decoder requires, or at least drops
		// `last`: it never passes for the whole list (the frame's length catches the rest).
		if (part)
			CHECK_FALSE((part->chunks.chunks == std::vector<uint64_t>{ 3, 4, 900 } && part->last));
	}
	auto hello = encode(MigrationHello{ kMigrationVersion, "mig", "leecher", 0, 0, 0 });
	CHECK_FALSE(decodeMigrationHello(bytes(hello.substr(0, hello.size() - 3))));
	CHECK_FALSE(decodeDirtyList(bytes(std::string("\xff\xff\xff", 3)), kRegion));
}

TEST_CASE("hellos and handover messages check every field", "[messages][validation]")
{
	auto hello = [](MigrationHello m) { return decodeMigrationHello(bytes(encode(m))); };
	CHECK(hello({ 2, "m", "l", 0, 0, 0 }).error().code.value() == EPROTONOSUPPORT);
	CHECK(hello({ kMigrationVersion, "", "l", 0, 0, 0 }).error().message.find("migration id") != std::string::npos);
	CHECK(hello({ kMigrationVersion, "m", "", 0, 0, 0 }).error().message.find("leecher id") != std::string::npos);
	CHECK_FALSE(hello({ kMigrationVersion, std::string(kMaxIdLength + 1, 'x'), "l", 0, 0, 0 }));
	CHECK(hello({ kMigrationVersion, "m", "l", 0, 100, 0 }).error().message.find("chunk size 100") != std::string::npos);
	CHECK(hello({ kMigrationVersion, "m", "l", 0, 0, 0 })); // "whatever the seeder has"

	auto reply = [](MigrationHelloReply m) { return decodeMigrationHelloReply(bytes(encode(m))); };
	CHECK(reply({ 0, "", "m", 1 << 20, 4096, 1, 0, false }));
	CHECK(reply({ 0, "", "m", 0, 4096, 1, 0, false }).error().message.find("empty") != std::string::npos);
	CHECK(reply({ 0, "", "m", 1 << 20, 256, 1, 0, false }).error().message.find("chunk size") != std::string::npos);
	CHECK(reply({ 0, "", "m", 1 << 20, 4096, 0, 0, false }).error().message.find("epoch 0") != std::string::npos);
	CHECK(reply({ 0, "", "m", (kMaxRegionChunks + 1) * 512, 512, 1, 0, false }).error().message.find("over the limit")
	      != std::string::npos);
	CHECK(reply({ -3, "", "m", 1 << 20, 4096, 1, 0, false }).error().message.find("not an errno") != std::string::npos);
	CHECK_FALSE(reply({ EPERM, std::string(kMaxMessageText + 1, 'x'), "", 0, 0, 0, 0, false }));
	auto refused = reply({ EPERM, "wrong token", "", 0, 0, 0, 0, false });
	REQUIRE(refused); // a refusal needs no region
	CHECK(refused->error == EPERM);

	CHECK(decodeFinalizeRequest(bytes(encode(FinalizeRequest{ "m", "l", 0, 0 }))).error().message.find("epoch 0")
	      != std::string::npos);
	CHECK_FALSE(decodeFinalizeRequest(bytes(encode(FinalizeRequest{ "", "l", 1, 0 }))));
	CHECK_FALSE(decodeFinalizeAck(bytes(encode(FinalizeAck{ 0, "", 0, 0 }))));
	CHECK(decodeFinalizeAck(bytes(encode(FinalizeAck{ EBUSY, "busy", 0, 0 }))));
	CHECK_FALSE(decodeFinalizeCommit(bytes(encode(FinalizeCommit{ "m", "l", 0 }))));
	CHECK_FALSE(decodeFinalizeCommitAck(bytes(encode(FinalizeCommitAck{ 0, "", 0 }))));
	CHECK_FALSE(decodeResume(bytes(encode(Resume{ "m", "l", 0, 0, ChunkWindow{ 0, 10, {} }, true })), kRegion));
	CHECK_FALSE(decodeResume(bytes(encode(Resume{ "m", "l", 1, 0, ChunkWindow{ 0, 1002, {} }, true })), kRegion));
}
