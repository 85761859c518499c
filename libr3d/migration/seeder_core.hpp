#pragma once

// What the seeder's sessions share (internal to Seeder): the source's pipeline (tracker,
// write fence, lock), one dirty view, round ledger and state per leecher, and the handover.
// Every method takes the one mutex for a moment; the slow steps of a finalize (suspend
// hook, lock, flush) run outside it on the Runtime's blocking pool. A watchdog thread
// aborts a handover whose commit does not come within commitTimeout.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "migration/dirty_fanout.hpp"
#include "migration/migration_progress.hpp"
#include "migration/migration_state.hpp"
#include "migration/round_ledger.hpp"
#include "migration/seeder_handover.hpp"
#include "migration/write_fence.hpp"
#include "stages/lockable_read_writer_at.hpp"
#include "stages/tracking_read_writer_at.hpp"

namespace r3d::migration {

class SeederSession;

struct SeederCoreOptions {
	std::string migrationId;
	uint64_t chunkSize = 0;
	SeederHandoverOptions handover;
	std::function<ResultMsg<void>()> onSuspend;
	std::function<void()> onResume;
	ProgressCallback onProgress;
};

/// One leecher as the seeder keeps it across its connections.
struct SeederPeer {
	explicit SeederPeer(std::shared_ptr<DirtySource> v) : view(std::move(v)), state(Role::Seeder) {}

	std::shared_ptr<DirtySource> view;
	RoundLedger ledger;
	MigrationState state;
	SeederSession *session = nullptr; ///< its connection now, null while it is away
	Phase beforeFinalize = Phase::Tracking;
	std::vector<uint64_t> finalList; ///< taken for its handover, requeued if that aborts
};

class SeederCore : public std::enable_shared_from_this<SeederCore>
{
public:
	SeederCore(std::shared_ptr<ReadWriterAt> source, SeederCoreOptions options);
	~SeederCore();

	ResultMsg<void> start();
	void stop();

	const std::string &migrationId() const { return options_.migrationId; }
	RegionShape region() const { return { source_->size(), options_.chunkSize }; }
	const std::shared_ptr<ReadWriterAt> &source() const { return source_; }
	std::shared_ptr<ReadWriterAt> front() const { return front_; }

	/// A leecher's hello on `session`: checks it, joins the leecher (making its view on
	/// first sight), closes an older connection of the same leecher. On the server's strand.
	MigrationHelloReply admit(const MigrationHello &hello, SeederSession *session);
	/// `session` of `leecherId` ended: the leecher is away (its state kept); a handover of
	/// it that has not committed aborts.
	void left(const std::string &leecherId, SeederSession *session);
	/// The next round's list for the leecher, after it confirmed `applied`.
	ResultMsg<DirtyRound> nextRound(const std::string &leecherId, uint64_t applied);
	/// Resume after a reconnect: the leecher has every list up to `round`.
	ResultMsg<void> resume(const std::string &leecherId, uint64_t round);
	/// FinalizeRequest: the proposed epoch, or the refusal (EPERM: another leecher owns;
	/// this one ends as a read-only copy).
	ResultMsg<uint64_t> beginFinalize(const FinalizeRequest &request);
	/// Blocking (the Runtime's pool): suspend hook, lock, flush, then the final list of the
	/// proposal `proposed`; ECANCELED when the handover was aborted meanwhile.
	ResultMsg<DirtyRound> lockForHandover(const std::string &leecherId, uint64_t proposed);
	/// FinalizeCommit: the commit point.
	ResultMsg<void> commit(const FinalizeCommit &commit);
	/// How long the seeder has been locked for the handover running now (0 if not locked).
	std::chrono::nanoseconds lockedFor() const;
	/// The handover of `leecherId` failed before the commit: unlock, requeue its final list.
	void abortHandover(const std::string &leecherId, const std::string &why);
	/// The leecher holds the whole region.
	void complete(const std::string &leecherId);

	MigrationProgress progress() const;
	bool handedOver() const;
	/// The ownership epoch now.
	uint64_t epoch() const;
	/// Until the owner has completed (true) or `timeout`.
	bool waitOwnerComplete(std::chrono::milliseconds timeout);
	/// Bytes the leechers read (set by the Seeder from its server's counters).
	void setServedBytes(std::function<uint64_t()> served)
	{
		std::lock_guard lock(mutex_);
		servedBytes_ = std::move(served);
	}

private:
	void abortLocked(const std::string &leecherId, const std::string &why);
	void watchdog();
	void report();
	SeederPeer *peer(const std::string &leecherId);

	std::shared_ptr<ReadWriterAt> source_;
	SeederCoreOptions options_;
	std::shared_ptr<stages::TrackingReadWriterAt> tracker_;
	std::shared_ptr<WriteFence> fence_;
	std::shared_ptr<stages::LockableReadWriterAt> lock_;
	std::shared_ptr<ReadWriterAt> front_;
	std::shared_ptr<DirtyFanout> fanout_;
	std::function<uint64_t()> servedBytes_;

	mutable std::mutex mutex_;
	std::condition_variable changed_;
	SeederHandover handover_;
	std::map<std::string, std::unique_ptr<SeederPeer>> peers_;
	bool locked_ = false;    ///< lock_ is held for a handover
	bool suspended_ = false; ///< onSuspend ran for it
	std::chrono::steady_clock::time_point lockedAt_{};
	std::chrono::nanoseconds downtime_{ 0 };
	bool ownerComplete_ = false;
	bool stopping_ = false;
	std::thread watchdog_;
};

} // namespace r3d::migration
