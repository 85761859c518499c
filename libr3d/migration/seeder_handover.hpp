#pragma once

// The seeder's side of the ownership handover, for one region and any number of leechers.
// Ownership is a migration epoch: the seeder owns epoch 1 (or whatever it was created with)
// and at most one handover can raise it. Two phases:
//
//   B: FinalizeRequest(epoch E) ─▶ A: request(): refused unless E is the current epoch, A
//        still owns and no other finalize runs; else A proposes P > E and the caller
//        suspends the writers, flushes and locks, then sends FinalizeAck(P) + the final list
//   B: FinalizeCommit(P)        ─▶ A: commit(): THE COMMIT POINT. A hands over and never
//        writes again (mayWrite() stays false for good); FinalizeCommitAck(P) ─▶ B, and
//        only then does B write.
//
// Before the commit, any failure (B's link lost, B refused, the suspend hook failed, no
// commit within commitTimeout) is abort(): A owns again and unlocks, and the proposal P is
// dead, so a commit for it arriving late is refused with ESTALE. B writes only after the
// commit ack, so a lost ack leaves B waiting (it learns on reconnect from
// owner()/handedOverTo()), never two writers.
//
// Fork-many: every leecher joins; exactly one can take ownership. While one finalizes, a
// request from another is refused with EBUSY; after the commit, the others are read-only
// copies: they get the final dirty list too and their requests fail with EPERM.

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include <r3d/result.hpp>

#include "migration/messages.hpp"

namespace r3d::migration {

struct SeederHandoverOptions {
	/// How long a locked seeder waits for the commit before it takes ownership back.
	std::chrono::nanoseconds commitTimeout = std::chrono::seconds(10);
};

enum class LeecherStanding {
	Candidate,    ///< may still ask for ownership
	Finalizing,   ///< its handover runs now
	Owner,        ///< it took ownership
	ReadOnlyCopy, ///< another leecher took ownership; this one ends as a read-only copy
};
const char *standingName(LeecherStanding standing);

class SeederHandover
{
public:
	using Clock = std::function<std::chrono::steady_clock::time_point()>;

	SeederHandover(std::string migrationId, uint64_t epoch = 1, SeederHandoverOptions options = {},
		       Clock clock = &std::chrono::steady_clock::now);

	const std::string &migrationId() const { return migrationId_; }
	/// The ownership epoch now: raised once, by the commit.
	uint64_t epoch() const { return epoch_; }
	/// The seeder may write: it owns the region and no handover has it locked.
	bool mayWrite() const { return !handedOver_ && !finalizing_; }
	/// EROFS after the handover, EBUSY while locked for one: for the seeder's own write path.
	ResultMsg<void> checkWrite() const;
	bool handedOver() const { return handedOver_; }
	/// The leecher that took ownership, "" while the seeder owns.
	const std::string &owner() const { return owner_; }
	/// The leecher whose handover runs now, "" if none.
	const std::string &finalizing() const { return finalizingLeecher_; }
	/// The epoch proposed to the finalizing leecher (0 if none).
	uint64_t proposed() const { return finalizing_ ? proposed_ : 0; }

	/// A leecher connected (again); returns its standing. A reconnect keeps it; a leecher
	/// new after the handover is admitted as a read-only copy. A reconnect of the leecher
	/// whose handover runs aborts that handover: its old connection is gone (the transport's
	/// fencing has closed it and drained its calls before this hello), so its commit can no
	/// longer arrive, and waiting for the timeout would only keep the seeder locked.
	LeecherStanding join(const std::string &leecherId);
	/// Checks a leecher's hello against this migration and `region` (id, size and chunk
	/// size, an epoch not newer than ours), joins it, and builds the reply; `round` is where
	/// the seeder's rounds for it are. The refusals are the reply's error too.
	ResultMsg<MigrationHelloReply> admit(const MigrationHello &hello, const RegionShape &region, uint64_t round);
	void leave(const std::string &leecherId);
	LeecherStanding standing(const std::string &leecherId) const;
	size_t leechers() const { return leechers_.size(); }

	/// B asks for ownership. Returns the proposed epoch; the caller then locks the seeder.
	ResultMsg<uint64_t> request(const FinalizeRequest &request);
	/// B commits. On success the seeder never writes again.
	ResultMsg<void> commit(const FinalizeCommit &commit);
	/// The handover of `leecherId` failed before the commit: the seeder owns again.
	ResultMsg<void> abort(const std::string &leecherId, const std::string &why);
	/// Aborts a handover whose commit has not come within commitTimeout (the caller then
	/// unlocks). Returns whether it did.
	bool expire();
	/// Why the last handover was aborted.
	const std::string &lastAbort() const { return lastAbort_; }

private:
	ResultMsg<void> checkMigration(const std::string &id) const;

	std::string migrationId_;
	uint64_t epoch_;
	SeederHandoverOptions options_;
	Clock clock_;
	std::map<std::string, LeecherStanding> leechers_;
	bool finalizing_ = false;
	std::string finalizingLeecher_;
	uint64_t proposed_ = 0;
	uint64_t highestProposed_ = 0; ///< never reused, so a late commit of a dead proposal is stale
	std::chrono::steady_clock::time_point deadline_{};
	bool handedOver_ = false;
	std::string owner_;
	std::string lastAbort_;
};

} // namespace r3d::migration
