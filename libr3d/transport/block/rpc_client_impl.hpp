#pragma once

// The inside of RpcClient, shared by its parts: rpc_client.cpp (the calls and their
// lifetime), rpc_client_queue.cpp (queues, slots and resends), rpc_client_connect.cpp
// (connection setup and the hello) and rpc_client_loops.cpp (reader, writer, sweeper).

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "base/runtime.hpp"
#include "transport/block/ops.hpp"
#include "transport/block/rpc_client.hpp"
#include "transport/channel.hpp"
#include "transport/drain.hpp"

namespace spdlog {
class logger;
}

namespace r3d::transport {

inline constexpr size_t kMaxCallsPerWrite = 64;
inline constexpr size_t kMaxBytesPerWrite = 8 * 1024 * 1024;
inline constexpr std::chrono::milliseconds kSweepInterval{ 100 };

/// One request of a blocked caller. It lives on the caller's stack; the client's strand
/// holds a pointer until complete() releases the caller.
struct Call {
	Request request;
	std::span<std::byte> in;
	std::span<const std::byte> out;
	int error = 0;
	uint64_t size = 0;
	Clock::time_point deadline;
	// While a socket operation uses `out` or `in` the call must not be completed.
	bool writing = false;   ///< its frame is part of a write in progress
	bool receiving = false; ///< its reply payload is being read into `in`
	bool answered = false;  ///< replied while still writing: the writer completes it
	std::binary_semaphore done{ 0 };

	bool busy() const { return writing || receiving; }
	bool mutating() const { return changesData(request.op); }
};

struct Connection {
	explicit Connection(std::unique_ptr<Channel> c)
		: channel(std::move(c)), writerWake(channel->socket().get_executor()),
		  writerGone(channel->socket().get_executor())
	{
	}

	/// `abortive`: reset, so request bytes the kernel has not sent yet never leave.
	void close(std::string reason, bool abortive = false)
	{
		if (closed)
			return;
		closed = true;
		why = std::move(reason);
		if (abortive)
			channel->abort();
		else
			channel->close();
		writerWake.notify();
	}

	/// When the connection last moved bytes either way, or went from idle to busy.
	Clock::time_point progress() const
	{
		return std::max({ busySince, channel->readProgress(), channel->writeProgress() });
	}

	std::unique_ptr<Channel> channel;
	/// Requests sent on this connection by id; nullptr once its caller gave up (the
	/// reply, if it ever comes, is read and dropped).
	std::unordered_map<uint64_t, Call *> inFlight;
	Wakeup writerWake;
	Wakeup writerGone;
	Clock::time_point busySince = Clock::now();
	bool closed = false;
	bool writerDone = false;
	std::string why;
};

struct Slot {
	Slot(asio::any_io_executor ex, uint32_t i) : index(i), wake(std::move(ex)) {}
	uint32_t index;
	uint64_t incarnation = 0; ///< of the newest connection attempt
	Wakeup wake;
	std::shared_ptr<Connection> connection;
	std::function<void()> cancelConnect;
	/// Writes, trims and zeroings a lost connection of this slot carried. They go out
	/// again only on this slot's next connection, after its hello has fenced the old one.
	std::deque<Call *> resend;
	/// A lost connection carried writes and the next hello has not fenced it yet.
	bool fencePending = false;
	/// ... and one of those writes failed at its deadline: a copy may still run on the
	/// server, so no write goes out anywhere until the fence.
	bool unfenced = false;
};

struct RpcClient::Impl {
	Impl(Runtime &rt, RpcClientOptions o);

	Runtime &runtime;
	Strand strand;
	RpcClientOptions options;
	std::string where; ///< "host:port/export" for messages
	std::string sessionId; ///< Hello::session
	RemoteExportInfo info;
	bool haveInfo = false;
	uint32_t maxPayload = 0;
	unsigned maxInFlight = 0;
	std::shared_ptr<asio::ssl::context> tls;
	std::shared_ptr<spdlog::logger> log;

	// Strand only.
	uint64_t nextId = 1;
	std::deque<Call *> pendingWrites; ///< mutating calls not sent yet
	std::deque<Call *> pendingOthers; ///< the rest, and reads a lost connection carried
	std::vector<std::unique_ptr<Slot>> slots;
	bool stopping = false;
	bool warnedUnfenced = false;

	std::atomic<uint64_t> reconnects{ 0 }, resent{ 0 }, expired{ 0 };
	mutable std::mutex lastErrorMutex;
	std::string lastError;

	bool started = false;
	std::optional<Wakeup> sweepWake;
	/// Held by every coroutine, so stop() can wait for them.
	Drain drain;

	// Any thread.
	void submit(Call &call);
	Result<void> wait(Call &call);
	/// A request without payload; returns the reply's size field.
	Result<uint64_t> runOne(Op op, uint64_t offset, uint64_t length);
	Result<void> runSplit(Op op, uint64_t offset, uint64_t length, std::span<std::byte> in,
			      std::span<const std::byte> out);
	/// Ends every coroutine and fails what is still queued with ECANCELED; returns when
	/// nothing of the client runs on the Runtime any more. Not from the Runtime's threads.
	void stop();
	void setLastError(std::string text);
	/// Runs `work` on the strand, holding the drain until it ends.
	void spawn(asio::awaitable<void> work);

	// Strand only.
	void enqueue(Call *call);
	void complete(Call *call, int error, uint64_t size);
	void wakeWriters();
	void requeue(Slot &slot, Connection &c);
	/// Fails the calls of `queue` past their deadline; returns how many.
	size_t expire(std::deque<Call *> &queue, Clock::time_point now);
	/// Whether writes must wait: one failed at its deadline may still run on the server.
	bool holdWrites() const;
	/// Whether `c` of `slot` has something to send now.
	bool hasWork(const Slot &slot, const Connection &c) const;
	/// The next queued call, oldest first; writes only when not held.
	Call *popPending(bool hold);
	/// Whether another live connection carries fewer requests: it should take the next ones.
	bool busierThanOthers(const Connection &c) const;
	asio::awaitable<ResultMsg<std::shared_ptr<Connection>>> establish(Slot &slot);
	asio::awaitable<ResultMsg<HelloReply>> hello(Channel &channel, const Slot &slot);
	/// Refuses a reconnect to an export that no longer fits what callers were promised.
	ResultMsg<void> checkUnchanged(const HelloReply &reply) const;
	asio::awaitable<void> slotLoop(Slot &slot);
	asio::awaitable<void> readLoop(Connection &c);
	asio::awaitable<void> writeLoop(Slot &slot, std::shared_ptr<Connection> c);
	asio::awaitable<void> sweepLoop();
	/// Resets connections that made no progress, or whose writes passed their deadline;
	/// fails other calls past theirs. Returns how many calls failed.
	uint64_t sweepConnection(Connection &c, Clock::time_point now);
	std::string describeFailure(const ErrorCode &ec, Channel &channel, const std::string &step) const;
	/// describeFailure() plus a hint at the usual cause of a refused connection setup.
	std::string describeSetupFailure(const ErrorCode &ec, Channel &channel, const std::string &step) const;
};

} // namespace r3d::transport
