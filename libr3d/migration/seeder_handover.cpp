#include "migration/seeder_handover.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace r3d::migration {

const char *standingName(LeecherStanding standing)
{
	switch (standing) {
	case LeecherStanding::Candidate:
		return "candidate";
	case LeecherStanding::Finalizing:
		return "finalizing";
	case LeecherStanding::Owner:
		return "owner";
	case LeecherStanding::ReadOnlyCopy:
		return "read-only copy";
	}
	return "unknown";
}

SeederHandover::SeederHandover(std::string migrationId, uint64_t epoch, SeederHandoverOptions options, Clock clock)
	: migrationId_(std::move(migrationId)), epoch_(std::max<uint64_t>(epoch, 1)), options_(options),
	  clock_(std::move(clock)), highestProposed_(epoch_)
{
}

ResultMsg<void> SeederHandover::checkWrite() const
{
	if (handedOver_)
		return fail(EROFS, fmt::format("migration {}: ownership passed to leecher {} at epoch {}; the seeder "
					       "never writes again",
					       migrationId_, owner_, epoch_));
	if (finalizing_)
		return fail(EBUSY, fmt::format("migration {}: locked while leecher {} finalizes", migrationId_,
					       finalizingLeecher_));
	return {};
}

ResultMsg<void> SeederHandover::checkMigration(const std::string &id) const
{
	if (id != migrationId_)
		return fail(ENOENT, fmt::format("no migration '{}' here (this is '{}')", id, migrationId_));
	return {};
}

LeecherStanding SeederHandover::join(const std::string &leecherId)
{
	if (finalizing_ && leecherId == finalizingLeecher_)
		(void)abort(leecherId, "the leecher reconnected during its handover");
	auto it = leechers_.find(leecherId);
	if (it != leechers_.end())
		return it->second; // a reconnect keeps its standing
	auto standing = handedOver_ ? LeecherStanding::ReadOnlyCopy : LeecherStanding::Candidate;
	leechers_.emplace(leecherId, standing);
	return standing;
}

ResultMsg<MigrationHelloReply> SeederHandover::admit(const MigrationHello &hello, const RegionShape &region,
						    uint64_t round)
{
	if (auto ok = checkMigration(hello.migrationId); !ok)
		return unexpectedOf(ok.error());
	if (hello.regionSize != 0 && hello.regionSize != region.size)
		return fail(EINVAL, fmt::format("migration {}: leecher {} expects a region of {} bytes, the seeder's has {}",
						migrationId_, hello.leecherId, hello.regionSize, region.size));
	if (hello.chunkSize != 0 && hello.chunkSize != region.chunk)
		return fail(EINVAL, fmt::format("migration {}: leecher {} expects {}-byte chunks, the seeder's are {}",
						migrationId_, hello.leecherId, hello.chunkSize, region.chunk));
	if (hello.epoch > epoch_)
		return fail(ESTALE, fmt::format("migration {}: leecher {} knows epoch {}, newer than this seeder's {}",
						migrationId_, hello.leecherId, hello.epoch, epoch_));
	auto standing = join(hello.leecherId);
	MigrationHelloReply reply;
	reply.migrationId = migrationId_;
	reply.regionSize = region.size;
	reply.chunkSize = region.chunk;
	reply.epoch = epoch_;
	reply.round = round;
	reply.handedOver = standing == LeecherStanding::Owner;
	return reply;
}

void SeederHandover::leave(const std::string &leecherId)
{
	// The owner and a finalizing leecher stay known: the owner may reconnect to post-copy,
	// and the finalizing one is aborted by its link loss or the timeout, not by leaving.
	auto it = leechers_.find(leecherId);
	if (it != leechers_.end() && it->second != LeecherStanding::Owner && it->second != LeecherStanding::Finalizing)
		leechers_.erase(it);
}

LeecherStanding SeederHandover::standing(const std::string &leecherId) const
{
	auto it = leechers_.find(leecherId);
	if (it != leechers_.end())
		return it->second;
	return handedOver_ ? LeecherStanding::ReadOnlyCopy : LeecherStanding::Candidate;
}

ResultMsg<uint64_t> SeederHandover::request(const FinalizeRequest &req)
{
	if (auto ok = checkMigration(req.migrationId); !ok)
		return unexpectedOf(ok.error());
	if (handedOver_)
		return fail(EPERM, fmt::format("migration {}: ownership already passed to leecher {} at epoch {}; "
					       "leecher {} ends as a read-only copy",
					       migrationId_, owner_, epoch_, req.leecherId));
	if (finalizing_) {
		if (req.leecherId == finalizingLeecher_)
			return fail(EALREADY, fmt::format("migration {}: leecher {} is already finalizing (epoch {} proposed)",
							  migrationId_, req.leecherId, proposed_));
		return fail(EBUSY, fmt::format("migration {}: leecher {} is finalizing; only one leecher can take "
					       "ownership, {} is refused",
					       migrationId_, finalizingLeecher_, req.leecherId));
	}
	if (req.epoch != epoch_)
		return fail(ESTALE, fmt::format("migration {}: finalize request of leecher {} names epoch {}, the "
						"current one is {}",
						migrationId_, req.leecherId, req.epoch, epoch_));
	auto it = leechers_.find(req.leecherId);
	if (it == leechers_.end())
		return fail(ENOTCONN, fmt::format("migration {}: leecher {} has not joined", migrationId_, req.leecherId));
	finalizing_ = true;
	finalizingLeecher_ = req.leecherId;
	proposed_ = ++highestProposed_;
	deadline_ = clock_() + options_.commitTimeout;
	it->second = LeecherStanding::Finalizing;
	return proposed_;
}

ResultMsg<void> SeederHandover::commit(const FinalizeCommit &c)
{
	if (auto ok = checkMigration(c.migrationId); !ok)
		return unexpectedOf(ok.error());
	if (handedOver_) {
		// The owner resending its commit (its ack was lost) learns it went through.
		if (c.leecherId == owner_ && c.epoch == epoch_)
			return {};
		return fail(EPERM, fmt::format("migration {}: ownership already passed to leecher {} at epoch {}",
					       migrationId_, owner_, epoch_));
	}
	if (!finalizing_ || c.leecherId != finalizingLeecher_)
		return fail(ESTALE, fmt::format("migration {}: commit of leecher {} at epoch {} belongs to no running "
						"handover (aborted, or never asked for)",
						migrationId_, c.leecherId, c.epoch));
	if (c.epoch != proposed_)
		return fail(ESTALE, fmt::format("migration {}: commit of leecher {} names epoch {}, the proposal is {}",
						migrationId_, c.leecherId, c.epoch, proposed_));
	handedOver_ = true;
	finalizing_ = false;
	owner_ = c.leecherId;
	epoch_ = proposed_;
	for (auto &[id, standing] : leechers_)
		standing = id == owner_ ? LeecherStanding::Owner : LeecherStanding::ReadOnlyCopy;
	finalizingLeecher_.clear();
	return {};
}

ResultMsg<void> SeederHandover::abort(const std::string &leecherId, const std::string &why)
{
	if (!finalizing_ || leecherId != finalizingLeecher_)
		return fail(EINVAL, fmt::format("migration {}: leecher {} has no handover to abort", migrationId_,
						leecherId));
	finalizing_ = false;
	finalizingLeecher_.clear();
	lastAbort_ = why;
	if (auto it = leechers_.find(leecherId); it != leechers_.end())
		it->second = LeecherStanding::Candidate;
	return {};
}

bool SeederHandover::expire()
{
	if (!finalizing_ || clock_() < deadline_)
		return false;
	(void)abort(finalizingLeecher_, "no commit within the commit timeout");
	return true;
}

} // namespace r3d::migration
