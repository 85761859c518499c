#pragma once

// Host A of a live migration: any region (a mount's or an export's pipeline, a backend)
// becomes a migration source. From create() on, every write through front() is tracked;
// the seeder serves the region's reads to leechers over the r3 transport's block service
// (read-only, export name = the migration id) and the "migration" service next to it on the
// same server (same framing, caps, TLS and token): dirty lists by round, each leecher its own
// dirty view, and the two-phase finalize (seeder_handover.hpp): on a FinalizeRequest it runs
// onSuspend, locks front(), flushes the source and sends the final list under a new epoch;
// at the leecher's commit it hands over and never writes again (front() then fails writes
// with EROFS). Before the commit any failure unlocks and the seeder goes on. Exactly one
// leecher can take ownership; the others end as read-only copies.
//
//   users → front() = Lockable → WriteFence → Tracking → source
//   leechers' reads → block export → source (not locked: post-copy reads go on)

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "migration/migration_progress.hpp"
#include "migration/seeder_handover.hpp"
#include "transport/block/rpc_server.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::migration {

class SeederCore;

struct SeederOptions {
	/// The migration's id, what leechers name in r3://HOST:PORT/ID; "": a random one.
	std::string migrationId;
	/// Dirty tracking granularity: what a dirty chunk costs to send again.
	uint64_t chunkSize = 64 * 1024;
	/// The server listen() starts: TLS, token, caps, exactly as r3serve --r3's.
	transport::RpcServerOptions server;
	SeederHandoverOptions handover;
	/// Suspends the writers at finalize, before the lock (--on-finalize CMD, the
	/// FinalizeRequested signal). A failure aborts the handover; the seeder goes on. Runs
	/// on the Runtime's blocking pool.
	std::function<ResultMsg<void>()> onSuspend;
	/// The handover aborted after onSuspend: let the writers go on.
	std::function<void()> onResume;
	/// Called on every phase change and round (any thread; keep it short).
	ProgressCallback onProgress;
};

class Seeder
{
public:
	/// Starts tracking writes through front() at once. `runtime` must outlive the seeder.
	static ResultMsg<std::unique_ptr<Seeder>> create(Runtime &runtime, std::shared_ptr<ReadWriterAt> source,
							 SeederOptions options);
	~Seeder();
	Seeder(const Seeder &) = delete;
	Seeder &operator=(const Seeder &) = delete;

	const std::string &migrationId() const;
	/// What the region's own users read and write from now on (the NBD export, the mount).
	std::shared_ptr<ReadWriterAt> front() const;

	/// Starts a server of its own on "HOST:PORT" (port 0 picks one); returns the bound address.
	ResultMsg<std::string> listen(const std::string &hostPort);
	/// Offers the migration on an existing server instead (before its start()): the block
	/// export named by the migration id and the "migration" service.
	void addTo(transport::RpcServer &server);
	/// Stops the own server (leecher connections end; their state is gone) and tracking.
	/// A handover not committed is aborted. Idempotent.
	void stop();

	MigrationProgress progress() const;
	/// Ownership has passed to a leecher: front() is read-only for good.
	bool handedOver() const;
	/// Blocks until the new owner has the whole region (true) or `timeout` passed.
	bool waitComplete(std::chrono::milliseconds timeout);

private:
	Seeder(Runtime &runtime, std::shared_ptr<SeederCore> core, SeederOptions options);

	Runtime &runtime_;
	std::shared_ptr<SeederCore> core_;
	SeederOptions options_;
	std::unique_ptr<transport::RpcServer> server_;
};

} // namespace r3d::migration
