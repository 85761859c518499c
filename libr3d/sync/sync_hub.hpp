#pragma once

// Fan-out of pushes: a receiver into a cache directory (the SyncService) plus, for every
// copy it holds, one sender per destination whose source is the hub's copy. The source is
// acknowledged as soon as a generation is durable at the hub; each destination then gets
// what its copy lacks, on its own thread, at its own pace. What a destination lacks is the
// difference between the hub copy's hashes and the destination's (the union of the
// generations it has not acknowledged, bounded by the chunk count, never a queue), so a
// slow or dead destination never stalls the source or the others, and a reconnecting one
// catches up from its hashes. Lag per destination is in status(). A destination that
// refuses (wrong token, TLS, protocol version: SyncErrorKind) is reported and not retried.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <r3d/result.hpp>

#include "sync/sync_push.hpp"
#include "sync/sync_service.hpp"

namespace r3d::sync {

struct SyncHubOptions {
	std::string dir;
	std::vector<std::string> targets; ///< r3://HOST:PORT (a NAME is ignored: each copy keeps its own)
	std::vector<SyncLinkOptions> links;
	std::chrono::milliseconds retry{ 1000 };
	std::chrono::milliseconds maxRetry{ 10000 };
};

struct HubDestinationStatus {
	std::string to;
	std::string name;
	uint64_t hubGeneration = 0;
	uint64_t ackedGeneration = 0;
	uint64_t pendingChunks = 0;
	int error = 0;
	std::string message;
	/// A refusal (not Transient) is not retried: the destination is left until a restart.
	SyncErrorKind kind = SyncErrorKind::Transient;
	bool refused() const { return error != 0 && kind != SyncErrorKind::Transient; }
	uint64_t lag() const { return hubGeneration - std::min(hubGeneration, ackedGeneration); }
	std::string json() const;
};

class SyncHub
{
public:
	SyncHub(Runtime &runtime, SyncHubOptions options);
	~SyncHub();

	/// What the hub's SyncService is told to call after each generation.
	void applied(const AppliedGeneration &generation, const SyncReceiver &receiver);
	std::vector<HubDestinationStatus> status() const;
	/// Called with each destination's status after each of its pushes (its thread).
	std::function<void(const HubDestinationStatus &)> onPushed;
	void stop();

private:
	struct CopyState {
		uint64_t generation = 0;
		uint64_t size = 0;
		uint64_t chunk = 0;
		std::shared_ptr<const std::vector<ChunkHash>> hashes;
	};
	struct Destination;
	void loop(Destination &d);

	Runtime &runtime_;
	SyncHubOptions options_;
	mutable std::mutex mutex_;
	std::condition_variable changed_;
	std::map<std::string, CopyState> copies_;
	std::vector<std::unique_ptr<Destination>> destinations_;
	bool stopping_ = false;
};

} // namespace r3d::sync
