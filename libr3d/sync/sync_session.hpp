#pragma once

// One sender's connection to the sync service: after the transport hello it takes the
// SyncHello, opens (or reuses) the copy, answers with its generation and hashes, then
// applies generations: SyncBegin windows, the listed chunks ascending, SyncCommit, and
// answers each with a SyncAck once it is durable (or with the errno of the write that
// failed; the chunks of a failed generation are still read and dropped, so the sender gets
// its ack). A malformed or out-of-turn message closes the connection; a pending generation
// is dropped then. Runs on the RpcServer's strand, file I/O included.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sync/sync_messages.hpp"
#include "sync/sync_service.hpp"
#include "transport/channel_service.hpp"

namespace r3d::sync {

class SyncSession final : public transport::ChannelService
{
public:
	SyncSession(std::shared_ptr<SyncService> service, std::string peer);
	~SyncSession() override;

	transport::asio::awaitable<void> run(transport::Channel &channel, transport::Strand strand) override;
	void close() override;

private:
	transport::asio::awaitable<bool> handle(const SyncMessage &message, std::vector<std::byte> &payload);
	transport::asio::awaitable<bool> hello(const SyncMessage &message);
	transport::asio::awaitable<bool> send(std::string frames);
	bool refuse(const std::string &why);
	void finishGeneration(int error, const std::string &message);

	std::shared_ptr<SyncService> service_;
	std::string peer_;
	transport::Channel *channel_ = nullptr;
	bool closed_ = false;
	std::shared_ptr<SyncService::Copy> copy_;
	SyncReceiver *receiver_ = nullptr;
	std::string name_;
	uint64_t chunk_ = 0;
	uint32_t encodings_ = 0;         ///< chunk encodings agreed at the hello (bits)
	std::vector<std::byte> decoded_; ///< a zstd chunk's bytes

	// The generation being received.
	bool inGeneration_ = false;
	bool listDone_ = false;
	uint64_t generation_ = 0;
	uint64_t newSize_ = 0;
	uint64_t lastWindowEnd_ = 0;
	std::vector<uint64_t> expected_;
	size_t nextChunk_ = 0;
	uint64_t bytes_ = 0;
	int error_ = 0; ///< the generation failed at the receiver; its chunks are dropped
	std::string errorMessage_;
	std::chrono::steady_clock::time_point started_;
};

} // namespace r3d::sync
