#pragma once

// One leecher connection of the migration service, on the seeder: after the transport hello
// (TLS and token checked by the server) it answers with the region, then takes the
// leecher's messages one at a time: MigrationHello, RoundRequest (→ a dirty list), Resume,
// FinalizeRequest (→ lock, FinalizeAck + the final list), FinalizeCommit (→ the commit
// point), Complete. Every message is decoded by its validating decoder; a malformed one, or
// one out of turn, closes the connection (the leecher's state stays in the core for its
// reconnect). Runs on the RpcServer's strand; the slow finalize steps run on the
// Runtime's blocking pool.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "migration/chunk_set_assembler.hpp"
#include "migration/seeder_core.hpp"
#include "migration/wire.hpp"
#include "transport/channel_service.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::migration {

class SeederSession final : public transport::ChannelService, public std::enable_shared_from_this<SeederSession>
{
public:
	SeederSession(std::shared_ptr<SeederCore> core, Runtime &runtime, std::string peer);

	transport::asio::awaitable<void> run(transport::Channel &channel, transport::Strand strand) override;
	void close() override;
	/// A newer connection of the same leecher replaces this one (on the strand).
	void kill();

private:
	/// Handles one message; false ends the connection.
	transport::asio::awaitable<bool> handle(const WireMessage &message);
	transport::asio::awaitable<bool> finalize(const FinalizeRequest &request);
	transport::asio::awaitable<bool> send(MessageType type, const std::string &body);
	/// Sends a set as DirtyList windows of `round` and `epoch`, in one write.
	transport::asio::awaitable<bool> sendList(uint64_t round, uint64_t epoch, const std::vector<uint64_t> &chunks);
	/// Runs `fn` on the blocking pool and resumes on the strand with its result. (Arguments
	/// of co_awaited calls are named locals throughout: gcc 12 destroys some temporaries
	/// of a co_await expression twice.)
	transport::asio::awaitable<ResultMsg<DirtyRound>> offload(const std::function<ResultMsg<DirtyRound>()> &fn);
	bool refuse(const std::string &why);

	std::shared_ptr<SeederCore> core_;
	Runtime &runtime_;
	std::string peer_;
	transport::Channel *channel_ = nullptr;
	std::optional<transport::Strand> strand_;
	std::string leecherId_; ///< after the hello
	bool closed_ = false;
	std::optional<ChunkSetAssembler> resume_;
};

} // namespace r3d::migration
