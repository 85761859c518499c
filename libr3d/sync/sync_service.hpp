#pragma once

// The receiving end of pushes: the "sync" service of an RpcServer, keeping copies in one
// directory (one SyncReceiver per name, kept open between connections so a reconnecting
// sender gets the hashes without a rehash). One sender per name at a time; a second one is
// refused with EBUSY until the first has gone.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <r3d/result.hpp>

#include "sync/sync_receiver.hpp"

namespace r3d {
class ThreadPool;
}

namespace r3d::transport {
class RpcServer;
}

namespace r3d::sync {

/// One generation applied (for logs and the hub).
struct AppliedGeneration {
	std::string name;
	std::string peer;
	uint64_t generation = 0;
	uint64_t size = 0;
	uint64_t chunks = 0;       ///< chunks changed
	uint64_t bytes = 0;        ///< chunk bytes received
	double seconds = 0;        ///< from the first begin to the durable commit
	int error = 0;             ///< errno when the generation failed
	std::string message;
	std::vector<uint64_t> changed;
};

struct SyncServiceOptions {
	std::string dir;
	/// Instead of dir: one backend that every push goes into (SyncReceiver::openTarget),
	/// whatever the copy's name; one sender at a time.
	std::shared_ptr<ReadWriterAt> target;
	ReceiverOptions receiver;
	/// After each generation (applied or failed), on the server's strand: keep it short.
	std::function<void(const AppliedGeneration &, const SyncReceiver &)> onApplied;
};

class SyncService : public std::enable_shared_from_this<SyncService>
{
public:
	SyncService(SyncServiceOptions options, ThreadPool *pool);

	/// Registers the "sync" service. Call before the server starts.
	void addTo(transport::RpcServer &server);

	/// A copy, held by one session at a time.
	struct Copy {
		std::mutex mutex;
		bool busy = false;
		std::unique_ptr<SyncReceiver> receiver;
	};
	/// Claims `name` for a session (EBUSY if another holds it).
	ResultMsg<std::shared_ptr<Copy>> claim(const std::string &name);
	void release(const std::shared_ptr<Copy> &copy);

	const SyncServiceOptions &options() const { return options_; }
	ThreadPool *pool() const { return pool_; }

private:
	SyncServiceOptions options_;
	ThreadPool *pool_;
	std::mutex mutex_;
	std::map<std::string, std::shared_ptr<Copy>> copies_;
};

} // namespace r3d::sync
