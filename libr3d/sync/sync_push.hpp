#pragma once

// A push of one source file to several receivers in rounds (what `r3sync push` runs): each
// round hashes the source once, in parallel, and hands that snapshot to every destination's
// worker, which sends what its copy lacks on its own thread. A destination that fails is
// retried with backoff within its round (a reconnect fetches its hashes again). Rounds do
// not wait for a slow or dead destination past a bound relative to the others (lagWait):
// it is reported as lagging and carries on in the background; its queue holds only the
// newest snapshot, so when it catches up it sends the difference between that and its
// copy's hashes, whatever the rounds it missed changed.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "sync/sync_sender.hpp"

namespace r3d {
class Runtime;
class ThreadPool;
} // namespace r3d

namespace r3d::sync {

class SourceMapping;

/// "r3://HOST:PORT[/NAME]"; NAME defaults to `defaultName`.
ResultMsg<SyncLinkOptions> parseSyncTarget(const std::string &uri, const std::string &defaultName);

struct SyncPushOptions {
	std::string source;
	std::vector<std::string> targets; ///< the URIs as given, for reports
	std::vector<SyncLinkOptions> links;
	uint64_t chunk = 1 << 20;
	/// Attempts per destination per round, with backoff between them. A refusal (a wrong
	/// token, TLS, the protocol version: SyncErrorKind) ends the round's attempts at once,
	/// and later rounds do not contact that destination again.
	unsigned attempts = 5;
	std::chrono::milliseconds backoff{ 200 };
	std::chrono::milliseconds maxBackoff{ 5000 };
	/// How long round() waits for the destinations still pushing once the first one is
	/// done: max(lagWait, the time the first one took). Those still pushing then are
	/// reported as lagging and go on in the background. Zero: wait for every destination.
	std::chrono::milliseconds lagWait{ 2000 };
	/// From the second round on, hash from a mapping of the source kept across rounds
	/// (SourceMapping): no copy out of the page cache. The first round reads with pread,
	/// which costs less than faulting a fresh mapping in, so a single push never maps.
	bool keepMapping = true;
};

struct DestinationReport {
	std::string to;
	uint64_t ackedGeneration = 0;
	uint64_t chunksChanged = 0;
	uint64_t bytesSent = 0;
	uint64_t wireBytes = 0;
	int error = 0;
	std::string message;
	/// Still pushing an earlier round when this one was reported (error is EINPROGRESS).
	bool lagging = false;
	/// What the error means: a refusal (not Transient) was not retried.
	SyncErrorKind kind = SyncErrorKind::Transient;
	bool refused() const { return error != 0 && kind != SyncErrorKind::Transient; }
};

struct RoundReport {
	uint64_t round = 0;
	uint64_t generation = 0; ///< the highest generation acknowledged this round
	uint64_t size = 0;
	uint64_t chunks = 0;
	uint64_t chunksChanged = 0; ///< the most any destination needed
	uint64_t bytesSent = 0;     ///< over all destinations
	uint64_t wireBytes = 0;
	double hashSeconds = 0;
	double hashCpuSeconds = 0; ///< CPU time the hashing took over all its threads
	unsigned hashThreads = 0;
	double seconds = 0;
	std::vector<DestinationReport> destinations;
	bool allAcked() const;
	/// The first destination's refusal, if any refused (what `r3sync push` exits with).
	const DestinationReport *refusal() const;
	/// One JSON object (no newline), the fields `r3sync push --json` prints.
	std::string json() const;
};

class SyncPush
{
public:
	/// `pool` hashes; `runtime` carries the links.
	static ResultMsg<std::unique_ptr<SyncPush>> create(Runtime &runtime, ThreadPool &pool, SyncPushOptions options);
	~SyncPush();

	/// One round. Fails only when the source cannot be read; destinations' failures (and
	/// lag) are in the report. One caller at a time.
	ResultMsg<RoundReport> round();
	/// Makes running pushes' retries give up (any thread).
	void stop();

private:
	struct Snapshot;
	struct Worker;
	SyncPush(ThreadPool &pool, SyncPushOptions options);
	void work(Worker &w);
	DestinationReport pushOnce(Worker &w, const Snapshot &snapshot);

	ThreadPool &pool_;
	SyncPushOptions options_;
	std::vector<std::unique_ptr<Worker>> workers_;
	std::unique_ptr<SourceMapping> mapping_; ///< round()'s only
	uint64_t rounds_ = 0;
	std::atomic<bool> stopping_{ false };
	std::mutex mutex_;
	std::condition_variable changed_;
};

} // namespace r3d::sync
