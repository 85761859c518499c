#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
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
	template <class OnReply>
	Attempt pipeline(const std::vector<ArgvCommand> &commands, OnReply &&onReply);
	template <class OnReply>
	Result<void> run(const std::vector<ArgvCommand> &commands, OnReply &&onReply);

	redisContext *acquire(std::string &why);
	void release(redisContext *c, bool healthy);
	std::string key(uint64_t index) const;

	Options options_;
	std::string where_;
	std::mutex mutex_;
	std::condition_variable available_;
	std::vector<redisContext *> idle_;
	unsigned open_ = 0;
};

} // namespace r3d::backends
