#include "migration/messages.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "transport/proto_message.hpp"
#include "migration.pb.h"
#include "transport/chunk_set_codec.hpp"
#include "stages/chunk_geometry.hpp"

namespace r3d::migration {

using transport::fillChunkSet;
using transport::readChunkSet;

namespace {

template <class Message>
std::string serialize(const Message &m)
{
	return transport::serializeMessage(m);
}

template <class Message>
ResultMsg<Message> parse(std::span<const std::byte> meta, const char *what)
{
	return transport::parseMessage<Message>(meta, kMaxMigrationMeta, what);
}

ResultMsg<void> checkId(const std::string &id, const char *what)
{
	if (id.empty())
		return fail(EPROTO, fmt::format("the {} is empty", what));
	if (id.size() > kMaxIdLength)
		return fail(EPROTO, fmt::format("the {} is {} bytes long, over the limit of {}", what, id.size(),
						kMaxIdLength));
	return {};
}

ResultMsg<void> checkReplyError(int32_t error, const std::string &message, const char *what)
{
	if (error < 0 || error > 4095)
		return fail(EPROTO, fmt::format("{} carries error {}, not an errno", what, error));
	if (message.size() > kMaxMessageText)
		return fail(EPROTO, fmt::format("{} carries a {}-byte message, over the limit of {}", what,
						message.size(), kMaxMessageText));
	return {};
}

ResultMsg<void> checkEpoch(uint64_t epoch, const char *what)
{
	if (epoch == 0)
		return fail(EPROTO, fmt::format("{} names epoch 0; epochs start at 1", what));
	return {};
}

/// The (migration, leecher, epoch) a leecher's control message is addressed by.
template <class Pb>
ResultMsg<void> checkAddressed(const Pb &pb, const char *what)
{
	if (auto ok = checkId(pb.migration_id(), "migration id"); !ok)
		return ok;
	if (auto ok = checkId(pb.leecher_id(), "leecher id"); !ok)
		return ok;
	return checkEpoch(pb.epoch(), what);
}

/// A seeder's answer: an errno and its text, and an epoch when it is a yes.
template <class Pb>
ResultMsg<void> checkAnswer(const Pb &pb, const char *what)
{
	if (auto ok = checkReplyError(pb.error(), pb.message(), what); !ok)
		return ok;
	return pb.error() == 0 ? checkEpoch(pb.epoch(), what) : ResultMsg<void>{};
}

} // namespace

ResultMsg<void> checkRegion(const RegionShape &region)
{
	if (!stages::ChunkGeometry::validChunk(region.chunk))
		return fail(EPROTO, fmt::format("chunk size {} is outside [{}, {}]", region.chunk, limits::kMinChunk,
						limits::kMaxChunk));
	if (region.size == 0)
		return fail(EPROTO, "the region is empty");
	if (region.chunks() > kMaxRegionChunks)
		return fail(EPROTO, fmt::format("a region of {} chunks is over the limit of {}", region.chunks(),
						kMaxRegionChunks));
	return {};
}

std::string encode(const MigrationHello &m)
{
	r3::v1::MigrationHello pb;
	pb.set_version(m.version);
	pb.set_migration_id(m.migrationId);
	pb.set_leecher_id(m.leecherId);
	pb.set_region_size(m.regionSize);
	pb.set_chunk_size(m.chunkSize);
	pb.set_epoch(m.epoch);
	return serialize(pb);
}

std::string encode(const MigrationHelloReply &m)
{
	r3::v1::MigrationHelloReply pb;
	pb.set_error(m.error);
	pb.set_message(m.message);
	pb.set_migration_id(m.migrationId);
	pb.set_region_size(m.regionSize);
	pb.set_chunk_size(m.chunkSize);
	pb.set_epoch(m.epoch);
	pb.set_round(m.round);
	pb.set_handed_over(m.handedOver);
	return serialize(pb);
}

std::string encode(const DirtyList &m)
{
	r3::v1::DirtyList pb;
	pb.set_round(m.round);
	pb.set_epoch(m.epoch);
	fillChunkSet(*pb.mutable_chunks(), m.chunks);
	pb.set_last(m.last);
	return serialize(pb);
}

std::string encode(const RoundRequest &m)
{
	r3::v1::RoundRequest pb;
	pb.set_applied_round(m.appliedRound);
	return serialize(pb);
}

std::string encode(const FinalizeRequest &m)
{
	r3::v1::FinalizeRequest pb;
	pb.set_migration_id(m.migrationId);
	pb.set_leecher_id(m.leecherId);
	pb.set_epoch(m.epoch);
	pb.set_round(m.round);
	return serialize(pb);
}

std::string encode(const FinalizeAck &m)
{
	r3::v1::FinalizeAck pb;
	pb.set_error(m.error);
	pb.set_message(m.message);
	pb.set_epoch(m.epoch);
	pb.set_round(m.round);
	pb.set_locked_ns(m.lockedNs);
	return serialize(pb);
}

std::string encode(const FinalizeCommit &m)
{
	r3::v1::FinalizeCommit pb;
	pb.set_migration_id(m.migrationId);
	pb.set_leecher_id(m.leecherId);
	pb.set_epoch(m.epoch);
	return serialize(pb);
}

std::string encode(const FinalizeCommitAck &m)
{
	r3::v1::FinalizeCommitAck pb;
	pb.set_error(m.error);
	pb.set_message(m.message);
	pb.set_epoch(m.epoch);
	return serialize(pb);
}

std::string encode(const Resume &m)
{
	r3::v1::Resume pb;
	pb.set_migration_id(m.migrationId);
	pb.set_leecher_id(m.leecherId);
	pb.set_epoch(m.epoch);
	pb.set_round(m.round);
	fillChunkSet(*pb.mutable_held(), m.held);
	pb.set_last(m.last);
	return serialize(pb);
}

ResultMsg<MigrationHello> decodeMigrationHello(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::MigrationHello>(meta, "migration hello");
	if (!pb)
		return unexpectedOf(pb.error());
	if (pb->version() != kMigrationVersion)
		return fail(EPROTONOSUPPORT, fmt::format("migration hello speaks version {}, this side {}",
							 pb->version(), kMigrationVersion));
	if (auto ok = checkId(pb->migration_id(), "migration id"); !ok)
		return unexpectedOf(ok.error());
	if (auto ok = checkId(pb->leecher_id(), "leecher id"); !ok)
		return unexpectedOf(ok.error());
	// 0 means "whatever the seeder has"; a stated shape must be one a region can have.
	if (pb->chunk_size() != 0 && !stages::ChunkGeometry::validChunk(pb->chunk_size()))
		return fail(EPROTO, fmt::format("migration hello asks for chunk size {}, outside [{}, {}]",
						pb->chunk_size(), limits::kMinChunk, limits::kMaxChunk));
	if (pb->region_size() != 0 && pb->chunk_size() != 0) {
		if (auto ok = checkRegion({ pb->region_size(), pb->chunk_size() }); !ok)
			return unexpectedOf(ok.error());
	}
	return MigrationHello{ pb->version(), pb->migration_id(), pb->leecher_id(),
			       pb->region_size(), pb->chunk_size(), pb->epoch() };
}

ResultMsg<MigrationHelloReply> decodeMigrationHelloReply(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::MigrationHelloReply>(meta, "migration hello reply");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkReplyError(pb->error(), pb->message(), "migration hello reply"); !ok)
		return unexpectedOf(ok.error());
	MigrationHelloReply m;
	m.error = pb->error();
	m.message = pb->message();
	if (m.error != 0)
		return m; // a refusal carries only its reason
	if (auto ok = checkId(pb->migration_id(), "migration id"); !ok)
		return unexpectedOf(ok.error());
	if (auto ok = checkRegion({ pb->region_size(), pb->chunk_size() }); !ok)
		return unexpectedOf(ok.error());
	if (auto ok = checkEpoch(pb->epoch(), "migration hello reply"); !ok)
		return unexpectedOf(ok.error());
	m.migrationId = pb->migration_id();
	m.regionSize = pb->region_size();
	m.chunkSize = pb->chunk_size();
	m.epoch = pb->epoch();
	m.round = pb->round();
	m.handedOver = pb->handed_over();
	return m;
}

ResultMsg<DirtyList> decodeDirtyList(std::span<const std::byte> meta, const RegionShape &region)
{
	auto pb = parse<r3::v1::DirtyList>(meta, "dirty list");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkEpoch(pb->epoch(), "dirty list"); !ok)
		return unexpectedOf(ok.error());
	if (!pb->has_chunks())
		return fail(EPROTO, "dirty list carries no chunk set");
	auto chunks = readChunkSet(pb->chunks(), region.chunks(), "dirty list");
	if (!chunks)
		return unexpectedOf(chunks.error());
	return DirtyList{ pb->round(), pb->epoch(), std::move(*chunks), pb->last() };
}

ResultMsg<RoundRequest> decodeRoundRequest(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::RoundRequest>(meta, "round request");
	if (!pb)
		return unexpectedOf(pb.error());
	return RoundRequest{ pb->applied_round() };
}

ResultMsg<FinalizeRequest> decodeFinalizeRequest(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::FinalizeRequest>(meta, "finalize request");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkAddressed(*pb, "finalize request"); !ok)
		return unexpectedOf(ok.error());
	return FinalizeRequest{ pb->migration_id(), pb->leecher_id(), pb->epoch(), pb->round() };
}

ResultMsg<FinalizeAck> decodeFinalizeAck(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::FinalizeAck>(meta, "finalize ack");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkAnswer(*pb, "finalize ack"); !ok)
		return unexpectedOf(ok.error());
	return FinalizeAck{ pb->error(), pb->message(), pb->epoch(), pb->round(), pb->locked_ns() };
}

ResultMsg<FinalizeCommit> decodeFinalizeCommit(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::FinalizeCommit>(meta, "finalize commit");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkAddressed(*pb, "finalize commit"); !ok)
		return unexpectedOf(ok.error());
	return FinalizeCommit{ pb->migration_id(), pb->leecher_id(), pb->epoch() };
}

ResultMsg<FinalizeCommitAck> decodeFinalizeCommitAck(std::span<const std::byte> meta)
{
	auto pb = parse<r3::v1::FinalizeCommitAck>(meta, "finalize commit ack");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkAnswer(*pb, "finalize commit ack"); !ok)
		return unexpectedOf(ok.error());
	return FinalizeCommitAck{ pb->error(), pb->message(), pb->epoch() };
}

ResultMsg<Resume> decodeResume(std::span<const std::byte> meta, const RegionShape &region)
{
	auto pb = parse<r3::v1::Resume>(meta, "resume");
	if (!pb)
		return unexpectedOf(pb.error());
	if (auto ok = checkAddressed(*pb, "resume"); !ok)
		return unexpectedOf(ok.error());
	if (!pb->has_held())
		return fail(EPROTO, "resume carries no chunk set");
	auto held = readChunkSet(pb->held(), region.chunks(), "resume");
	if (!held)
		return unexpectedOf(held.error());
	return Resume{ pb->migration_id(), pb->leecher_id(), pb->epoch(), pb->round(), std::move(*held), pb->last() };
}

} // namespace r3d::migration
