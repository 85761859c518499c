#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "base/buffer_pool.hpp"
#include "transport/block/messages.hpp"
#include "transport/channel.hpp"
#include "transport/drain.hpp"
#include "transport/fencing.hpp"
#include "transport/in_flight_budget.hpp"

namespace r3d::transport {

class ChannelService;
struct OpHandler;
struct RpcServerState;
struct ServedExport;

/// One client connection of an RpcServer: TLS and hello, then a reader that validates
/// requests and dispatches them through the op table (ops.hpp), and a writer that sends
/// replies as they complete, in any order. Runs on the server's strand; backend calls that
/// may block run on the Runtime's blocking pool.
class RpcSession final : public std::enable_shared_from_this<RpcSession>, public Fenceable
{
public:
	RpcSession(RpcServerState &server, tcp::socket socket);
	~RpcSession();

	asio::awaitable<void> run();
	/// Stops reading and writing and drops queued backend calls; running ones finish.
	/// `abortive`: reset the connection, so nothing unread or unsent is delivered.
	void close(bool abortive = false);
	/// Whether a write of replies has made no progress for `timeout`.
	bool writeStalled(Clock::time_point now, std::chrono::milliseconds timeout) const;

	// Fenceable
	const FenceKey &fenceKey() const override { return key_; }
	const std::string &peer() const override { return peer_; }
	bool closed() const override { return closed_; }
	/// Whether a backend call of this session that changes the export is running.
	bool busy() override;
	void fenceClose() override { close(true); }
	void wakeFence() override { fenceWake_.notify(); }

private:
	/// A request's or reply's bytes, leased from the session's pool so that steady traffic
	/// does not allocate; a reused buffer is not zero-filled first (a read overwrites it).
	struct Payload {
		BufferPool::Lease lease;
		size_t size = 0;

		static Payload make(BufferPool &pool, size_t n);
		std::span<std::byte> span() { return { lease.bytes().data(), size }; }
	};

	struct Reply {
		std::string head; ///< frame header + Response
		Payload payload;
		uint64_t charge = 0; ///< bytes held against the connection's in-flight budget
		InFlightBudget::Reservation reservation; ///< and against the server's
	};

	asio::awaitable<bool> greet();
	asio::awaitable<bool> refuse(int error, const std::string &message);
	/// Closes the older connections of this client slot and waits for their backend calls.
	asio::awaitable<bool> fence();
	void helloDone();
	asio::awaitable<void> readLoop();
	asio::awaitable<void> writeLoop();
	void dispatch(const OpHandler &op, Request request, Payload payload, InFlightBudget::Reservation reservation);
	/// Runs `request` on the backend; returns 0 or its errno, and the reply's size field.
	int execute(const OpHandler &op, const Request &request, Payload &payload, uint64_t &size);
	/// Worker side of a backend call: false when the session was closed first. Calls that
	/// change the export are counted, for fences.
	bool enterBackend(const OpHandler &op);
	void leaveBackend(const OpHandler &op);
	void queueReply(uint64_t id, int error, uint64_t size, Payload payload, uint64_t charge,
			InFlightBudget::Reservation reservation = {});

	RpcServerState &server_;
	Drain::Token alive_; ///< the server's stop() waits for this session to be gone
	tcp::socket socket_; ///< until the Channel takes it
	std::unique_ptr<Channel> channel_;
	std::string peer_;
	BufferPool buffers_; ///< before everything that holds its leases
	const ServedExport *export_ = nullptr;
	std::shared_ptr<ChannelService> service_; ///< a service that took the connection over
	std::deque<Reply> outbox_;
	Wakeup writerWake_;
	Wakeup readerWake_;
	Wakeup fenceWake_;
	Wakeup idleWake_;
	unsigned inFlight_ = 0;
	uint64_t inFlightBytes_ = 0;
	bool closed_ = false;
	bool writerDone_ = false;
	bool greeting_ = true; ///< counted in pendingHellos
	FenceKey key_;         ///< Hello::session, slot, incarnation
	// Shared with the workers.
	std::mutex backendMutex_;
	bool cancelled_ = false;
	unsigned running_ = 0; ///< running backend calls that change the export
};

} // namespace r3d::transport
