#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <r3d/backend_uri.hpp>

#include "backends/chunk_store.hpp"

struct redisContext;

namespace r3d::backends {

/// Opens redis://HOST[:PORT]/PREFIX?size=SIZE&chunk=SIZE&connections=N&timeout=D&deadline=D.
ResultMsg<std::shared_ptr<ReadWriterAt>> openRedisUri(const BackendUri &uri);

/// Chunks as Redis strings, one key per chunk ("PREFIX:0000000000000007"), the geometry in
/// "PREFIX:meta". A missing key reads as zeros; trim deletes keys. The chunks of one call
/// travel as one pipeline on one of a bounded set of connections. A lost connection is
/// reconnected and the batch sent again (GET, SET and DEL of whole keys are idempotent)
/// until the deadline; then EIO.
class RedisBackend final : public ChunkStore
{
public:
	static constexpr uint64_t kDefaultChunkSize = 64 * 1024;

	struct Options {
		std::string host = "127.0.0.1";
		int port = 6379;
		std::string prefix;
		/// concurrency: connections; timeout: connecting, and each command.
		StoreParams store{ {}, {}, 16, std::chrono::milliseconds(10000), {} };
	};

	static ResultMsg<std::unique_ptr<RedisBackend>> open(Options options);
	~RedisBackend() override;

protected:
	Result<void> getChunks(std::span<const ChunkRead> chunks) override;
	Result<void> putChunks(std::span<const ChunkWrite> chunks) override;
	Result<void> deleteChunks(std::span<const uint64_t> indices) override;

private:
	struct ArgvCommand {
		std::vector<const char *> argv;
		std::vector<size_t> lengths;
	};

	explicit RedisBackend(Options options);

	/// Sends `commands` as one pipeline and hands each reply to `onReply`; one attempt.
	/// `lostClient`: the Redis client id of the connection the previous attempt lost, or 0;
	/// that client is killed before anything is sent again, and set here when this one is lost.
	template <class OnReply>
	Attempt pipeline(const std::vector<ArgvCommand> &commands, OnReply &&onReply, long long &lostClient);
	template <class OnReply>
	Result<void> run(const std::vector<ArgvCommand> &commands, OnReply &&onReply);

	redisContext *acquire(std::string &why);
	/// Gives `c` back; an unhealthy one is reset, so bytes it has not sent never leave.
	void release(redisContext *c, bool healthy);
	/// Ends the Redis client `id` of a lost connection, so nothing it still carries can run
	/// after what goes again on `c`. False when `c` itself broke.
	bool killClient(redisContext *c, long long id);
	std::string key(uint64_t index) const;

	Options options_;
	std::string where_;
	std::mutex mutex_;
	std::condition_variable available_;
	std::vector<redisContext *> idle_;
	std::unordered_map<redisContext *, long long> clientIds_; ///< CLIENT ID of each open connection
	unsigned open_ = 0;
	std::atomic<bool> warnedNoClientId_{ false };
};

} // namespace r3d::backends
