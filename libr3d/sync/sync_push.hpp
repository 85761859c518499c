#pragma once

// A push of one source file to several receivers in rounds (what `r3sync push` runs): each
// round hashes the source once, in parallel, then every destination's SyncSender sends what
// its copy lacks, all destinations at once. A destination that fails is retried with
// backoff within the round (a reconnect fetches its hashes again); one that stays down is
// reported and retried at the next round, without holding the others up.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "sync/sync_sender.hpp"

namespace r3d {
class Runtime;
class ThreadPool;
} // namespace r3d

namespace r3d::sync {

/// "r3://HOST:PORT[/NAME]"; NAME defaults to `defaultName`.
ResultMsg<SyncLinkOptions> parseSyncTarget(const std::string &uri, const std::string &defaultName);

struct SyncPushOptions {
	std::string source;
	std::vector<std::string> targets; ///< the URIs as given, for reports
	std::vector<SyncLinkOptions> links;
	uint64_t chunk = 1 << 20;
	/// Attempts per destination per round, with backoff between them.
	unsigned attempts = 5;
	std::chrono::milliseconds backoff{ 200 };
	std::chrono::milliseconds maxBackoff{ 5000 };
};

struct DestinationReport {
	std::string to;
	uint64_t ackedGeneration = 0;
	uint64_t chunksChanged = 0;
	uint64_t bytesSent = 0;
	uint64_t wireBytes = 0;
	int error = 0;
	std::string message;
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
	double seconds = 0;
	std::vector<DestinationReport> destinations;
	bool allAcked() const;
	/// One JSON object (no newline), the fields `r3sync push --json` prints.
	std::string json() const;
};

class SyncPush
{
public:
	/// `pool` hashes; `runtime` carries the links.
	static ResultMsg<std::unique_ptr<SyncPush>> create(Runtime &runtime, ThreadPool &pool, SyncPushOptions options);
	~SyncPush();

	/// One round. Fails only when the source cannot be read; destinations' failures are in
	/// the report.
	ResultMsg<RoundReport> round();
	/// Makes a running round give up (any thread): no more retries, and the links are
	/// dropped, so a push waiting for a connect or an ack ends now.
	void stop()
	{
		stopping_ = true;
		for (auto &sender : senders_)
			sender->close();
	}

private:
	SyncPush(ThreadPool &pool, SyncPushOptions options);

	ThreadPool &pool_;
	SyncPushOptions options_;
	std::vector<std::unique_ptr<SyncSender>> senders_;
	uint64_t rounds_ = 0;
	std::atomic<bool> stopping_{ false };
};

} // namespace r3d::sync
