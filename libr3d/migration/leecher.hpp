#pragma once

// Host B of a live migration. connect() says hello to the seeder's "migration" service,
// opens the seeder's block export as the remote of a LeecherRegion and brings the region up
// locked; a driver thread then runs the migration to its end:
//
//   first pass (Tracking)  everything pulled in the background;
//   pre-copy rounds        each takes the chunks dirtied since the last one (RoundRequest →
//                          DirtyList), marks them remote and pulls them; the controller
//                          (convergence_controller.hpp) decides when to stop: the downtime
//                          budget, max rounds, not converging, or finalize();
//   finalize               two-phase (leecher_handover.hpp): FinalizeRequest → the seeder
//                          locks and sends the final list under a new epoch → the chunks are
//                          marked remote → FinalizeCommit → the commit ack → unlock;
//   post-copy              what is still remote is pulled on demand first and in the
//                          background; then Complete to the seeder.
//
// A lost link in any phase keeps the state (round, which chunks are here, the handover's
// step) and reconnects with the same migration id, leecher id and epoch (Resume); the
// seeder requeues what was lost in flight. Post-copy reads during a cut wait up to
// postCopyTimeout, then fail with EIO. If another leecher took ownership, this one ends as
// a read-only copy of the final state (writes EROFS).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "migration/convergence_controller.hpp"
#include "migration/dirty_source.hpp"
#include "migration/leecher_handover.hpp"
#include "migration/migration_progress.hpp"
#include "migration/migration_state.hpp"
#include "migration/wire.hpp"
#include "transport/tls_config.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::migration {

class ControlLink;
class LeecherRegion;

struct LeecherOptions {
	std::string host;
	std::string port;
	std::string migrationId;
	/// Stable across reconnects; "": a random one.
	std::string leecherId;
	transport::TlsClientConfig tls;
	std::string token;
	ConvergenceOptions convergence;
	/// false: pre-copy rounds go on until finalize() (--finalize manual).
	bool autoFinalize = true;
	/// Background pulls, bytes per second; 0: unlimited. Demand pulls are never held back.
	uint64_t pullRate = 0;
	unsigned pullWorkers = 4;
	/// Connections of the data path (the block service).
	unsigned connections = 2;
	/// How long a read waits for a chunk through a cut before it fails with EIO.
	std::chrono::milliseconds postCopyTimeout{ 30000 };
	/// How long the driver keeps reconnecting after a lost link before it fails.
	std::chrono::milliseconds resumeTimeout{ 120000 };
	/// How long one answer of the seeder may take (a finalize includes its suspend hook).
	std::chrono::milliseconds messageTimeout{ 30000 };
	std::chrono::milliseconds connectTimeout{ 10000 };
	/// Called on every phase change and round, and about twice a second while pulling.
	ProgressCallback onProgress;
};

class Leecher
{
public:
	/// Connects, says hello, brings the region up (locked) and starts the migration.
	/// Fails with the reason (unreachable, TLS, token, no such migration, region mismatch).
	static ResultMsg<std::unique_ptr<Leecher>> connect(Runtime &runtime, LeecherOptions options);
	~Leecher();
	Leecher(const Leecher &) = delete;
	Leecher &operator=(const Leecher &) = delete;

	/// What to serve (NBD export, device): I/O waits until the handover; read-only when
	/// another leecher took ownership.
	std::shared_ptr<ReadWriterAt> region() const;
	const std::string &leecherId() const { return options_.leecherId; }

	/// Finalize as soon as possible (the current round ends first). Any thread.
	void finalize();
	/// Stops the migration where it is (the region stays as it is: locked unless handed
	/// over). Idempotent.
	void stop();
	/// Blocks until Complete or Failed (true: complete) or `timeout`.
	bool wait(std::chrono::milliseconds timeout);

	MigrationProgress progress() const;
	Phase phase() const;
	bool owner() const;

private:
	explicit Leecher(LeecherOptions options);

	enum class Step { Done, Again, LinkLost, Failed };
	/// Says hello on a fresh connection (and Resume when `resuming`).
	ResultMsg<void> greet(bool resuming);
	void driverLoop();
	/// Runs from the current phase on; returns at the end, a lost link or a failure.
	Step drive();
	Step preCopy();
	Step finalizeStep();
	Step readOnlyCopy();
	Step postCopy();
	/// Requests the next round and applies it. On success `bytes` is its size.
	ResultMsg<void> takeRound(uint64_t &bytes);
	/// Receives one message of `type` (a different one is EPROTO).
	ResultMsg<WireMessage> expect(MessageType type);
	/// Receives a whole list; `handover`: the final list, each part checked against the proposal.
	ResultMsg<std::vector<uint64_t>> receiveList(uint64_t &round, bool handover);
	/// Waits until every chunk is here; false when interrupted (stop or finalize()).
	bool waitAllLocal(bool interruptible);
	Step linkError(const Error &error);
	Step failWith(const std::string &why);
	void setPhase(const std::function<ResultMsg<void>(MigrationState &)> &move);
	void report();

	LeecherOptions options_;
	std::unique_ptr<ControlLink> link_;
	std::shared_ptr<ReadWriterAt> remote_;
	std::shared_ptr<LeecherRegion> region_;
	ConvergenceController controller_;
	LeecherHandover handover_;

	mutable std::mutex mutex_;
	std::condition_variable changed_;
	MigrationState state_;
	Phase beforeFinalize_ = Phase::Tracking;
	uint64_t regionSize_ = 0, chunk_ = 0; ///< from the first hello reply
	uint64_t applied_ = 0; ///< the last round whose list was applied
	bool roundOpen_ = false;
	uint64_t pulledAtRoundStart_ = 0;
	uint64_t lastDirtyBytes_ = 0;
	std::chrono::nanoseconds downtime_{ 0 };
	bool readOnly_ = false;

	std::atomic<bool> owner_{ false };
	std::atomic<bool> stopping_{ false };
	std::atomic<bool> finalizeAsked_{ false };
	uint64_t finalizeAsks_ = 0; // under mutex_: each finalize() call, so a backoff ends at once
	unsigned refusals_ = 0;	    // finalize refusals in a row (drive thread only)
	static constexpr std::chrono::milliseconds kRefusedFirstWait{ 100 };
	static constexpr std::chrono::milliseconds kRefusedMaxWait{ 5000 };
	std::thread driver_;
};

} // namespace r3d::migration
