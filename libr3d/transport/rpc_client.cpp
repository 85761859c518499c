#include "transport/rpc_client.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <semaphore>
#include <thread>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <openssl/rand.h>

#include <r3d/log.hpp>

#include "transport/channel.hpp"
#include "transport/tls.hpp"

namespace r3d::transport {

namespace {

constexpr size_t kMaxCallsPerWrite = 64;
constexpr size_t kMaxBytesPerWrite = 8 * 1024 * 1024;
constexpr std::chrono::milliseconds kSweepInterval{ 100 };

/// One request of a blocked caller. It lives on the caller's stack; the network thread
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

} // namespace

struct RpcClient::Impl {
	RpcClientOptions options;
	std::string where; ///< "host:port/export" for messages
	std::string sessionId; ///< Hello::session
	RemoteExportInfo info;
	bool haveInfo = false;
	uint32_t maxPayload = 0;
	unsigned maxInFlight = 0;
	std::shared_ptr<asio::ssl::context> tls;
	std::shared_ptr<spdlog::logger> log = log::get("transport");
	// Declared before every Asio object below (timers in slots, the work guard), so it is
	// destroyed after them.
	asio::io_context io{ 1 };

	// Network thread only.
	uint64_t nextId = 1;
	std::deque<Call *> pendingWrites; ///< mutating calls not sent yet
	std::deque<Call *> pendingOthers; ///< the rest, and reads a lost connection carried
	std::vector<std::unique_ptr<Slot>> slots;
	bool stopping = false;
	bool warnedUnfenced = false;

	std::atomic<uint64_t> reconnects{ 0 }, resent{ 0 }, expired{ 0 };
	mutable std::mutex lastErrorMutex;
	std::string lastError;

	std::thread thread;
	std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
	std::optional<Wakeup> sweepWake;

	// Any thread.
	void submit(Call &call);
	Result<void> wait(Call &call);
	/// A request without payload; returns the reply's size field.
	Result<uint64_t> runOne(Op op, uint64_t offset, uint64_t length);
	Result<void> runSplit(Op op, uint64_t offset, uint64_t length, std::span<std::byte> in,
			      std::span<const std::byte> out);
	void stop();
	void setLastError(std::string text);

	// Network thread.
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

void RpcClient::Impl::submit(Call &call)
{
	call.deadline = Clock::now() + options.deadline;
	asio::post(io, [this, &call] { enqueue(&call); });
}

Result<void> RpcClient::Impl::wait(Call &call)
{
	call.done.acquire();
	if (call.error)
		return unexpected(call.error);
	return {};
}

void RpcClient::Impl::setLastError(std::string text)
{
	std::lock_guard lock(lastErrorMutex);
	lastError = std::move(text);
}

void RpcClient::Impl::enqueue(Call *call)
{
	if (stopping) {
		complete(call, ECANCELED, 0);
		return;
	}
	call->request.id = nextId++;
	(call->mutating() ? pendingWrites : pendingOthers).push_back(call);
	wakeWriters();
}

void RpcClient::Impl::complete(Call *call, int error, uint64_t size)
{
	call->error = error;
	call->size = size;
	call->done.release(); // the caller may free `call` from here on
}

void RpcClient::Impl::wakeWriters()
{
	for (auto &slot : slots)
		if (slot->connection)
			slot->connection->writerWake.notify();
}

void RpcClient::Impl::requeue(Slot &slot, Connection &c)
{
	std::vector<Call *> calls;
	for (auto &[id, call] : c.inFlight)
		if (call)
			calls.push_back(call);
	c.inFlight.clear();
	// Oldest first, ahead of everything that never went out.
	std::sort(calls.begin(), calls.end(), [](Call *a, Call *b) { return a->request.id > b->request.id; });
	for (Call *call : calls) {
		call->writing = call->receiving = call->answered = false;
		if (call->mutating()) {
			slot.resend.push_front(call);
			slot.fencePending = true;
		} else {
			pendingOthers.push_front(call);
		}
	}
	resent += calls.size();
	if (!calls.empty())
		wakeWriters();
}

size_t RpcClient::Impl::expire(std::deque<Call *> &queue, Clock::time_point now)
{
	size_t before = queue.size();
	std::erase_if(queue, [&](Call *call) {
		if (now < call->deadline)
			return false;
		complete(call, EIO, 0);
		return true;
	});
	return before - queue.size();
}

bool RpcClient::Impl::holdWrites() const
{
	return std::any_of(slots.begin(), slots.end(), [](auto &s) { return s->unfenced; });
}

bool RpcClient::Impl::hasWork(const Slot &slot, const Connection &c) const
{
	if (c.inFlight.size() >= maxInFlight)
		return false;
	bool hold = holdWrites();
	if (!hold && !slot.resend.empty())
		return true;
	bool queued = !pendingOthers.empty() || (!hold && !pendingWrites.empty());
	return queued && !busierThanOthers(c);
}

Call *RpcClient::Impl::popPending(bool hold)
{
	bool takeWrite = !hold && !pendingWrites.empty() &&
			 (pendingOthers.empty() || pendingWrites.front()->request.id < pendingOthers.front()->request.id);
	auto &queue = takeWrite ? pendingWrites : pendingOthers;
	if (queue.empty())
		return nullptr;
	Call *call = queue.front();
	queue.pop_front();
	return call;
}

bool RpcClient::Impl::busierThanOthers(const Connection &c) const
{
	for (const auto &slot : slots)
		if (slot->connection && !slot->connection->closed && slot->connection->inFlight.size() < c.inFlight.size())
			return true;
	return false;
}

std::string RpcClient::Impl::describeFailure(const ErrorCode &ec, Channel &channel, const std::string &step) const
{
	if (channel.isTls() && isTlsError(ec))
		return fmt::format("the server refused the TLS session during {}: {}", step,
				   describeTlsError(ec, channel.sslHandle()));
	if (isPeerClose(ec))
		return fmt::format("the server closed the connection during {}", step);
	return fmt::format("{} failed: {}", step, ec.message());
}

std::string RpcClient::Impl::describeSetupFailure(const ErrorCode &ec, Channel &channel, const std::string &step) const
{
	std::string text = describeFailure(ec, channel, step);
	if (isPeerClose(ec))
		text += channel.isTls() ? " (does it use TLS? does it accept our client certificate?)"
					: " (does it require TLS? then give tls-ca=FILE)";
	return text;
}

ResultMsg<void> RpcClient::Impl::checkUnchanged(const HelloReply &reply) const
{
	if (!haveInfo)
		return {};
	if (reply.size != info.size || reply.chunkSize != info.chunkSize)
		return fail(ESTALE, fmt::format("the export changed from {} to {} bytes (chunk {} to {}); not using it",
						info.size, reply.size, info.chunkSize, reply.chunkSize));
	// Requests already split for the old limits would be refused piece by piece.
	if (reply.maxPayload < maxPayload)
		return fail(ESTALE, fmt::format("the server now takes requests of at most {} bytes, not {}; not using it",
						reply.maxPayload, maxPayload));
	if (reply.maxInFlight < maxInFlight)
		return fail(ESTALE, fmt::format("the server now takes at most {} requests in flight, not {}; not using it",
						reply.maxInFlight, maxInFlight));
	if (reply.readOnly && !info.readOnly)
		return fail(ESTALE, "the export became read-only; not using it");
	return {};
}

asio::awaitable<ResultMsg<HelloReply>> RpcClient::Impl::hello(Channel &channel, const Slot &slot)
{
	Hello h;
	h.exportName = options.exportName;
	h.token = options.token;
	h.clientName = options.clientName;
	h.session = sessionId;
	h.slot = slot.index;
	h.incarnation = slot.incarnation;
	std::string frame;
	appendFrame(frame, h);
	if (auto ec = co_await channel.write(frame))
		co_return fail(toErrno(ec), describeSetupFailure(ec, channel, "the hello"));
	FrameHeader header;
	std::vector<std::byte> meta;
	std::string reason;
	if (auto ec = co_await channel.readFrame(FrameKind::HelloReply, FrameLimits{ kMaxHelloMeta, 0 }, header, meta,
						 reason))
		co_return fail(toErrno(ec), reason.empty() ? describeSetupFailure(ec, channel, "the hello") : reason);
	auto reply = decodeHelloReply(meta);
	if (!reply)
		co_return unexpectedOf(reply.error());
	if (reply->error)
		co_return fail(reply->error, fmt::format("the server refused: {}", reply->message));
	auto unchanged = checkUnchanged(*reply);
	if (!unchanged)
		co_return unexpectedOf(unchanged.error());
	co_return reply;
}

asio::awaitable<ResultMsg<std::shared_ptr<Connection>>> RpcClient::Impl::establish(Slot &slot)
{
	auto ex = co_await asio::this_coro::executor;
	std::string target = fmt::format("{}:{}", options.host, options.port);
	ErrorCode ec;
	tcp::resolver resolver(ex);
	tcp::socket socket(ex);
	std::unique_ptr<Channel> channel;
	auto cancel = [&] {
		resolver.cancel();
		if (channel)
			channel->abort();
		else
			socket.close(ec);
	};
	slot.cancelConnect = cancel;
	slot.incarnation++;
	Watchdog watchdog(ex, options.connectTimeout, cancel);
	auto timedOut = [&](const std::string &what) -> ResultMsg<std::shared_ptr<Connection>> {
		return fail(ETIMEDOUT, fmt::format("{}: {} timed out after {} ms", target, what,
						   options.connectTimeout.count()));
	};
	struct ClearCancel {
		Slot &slot;
		~ClearCancel() { slot.cancelConnect = nullptr; }
	} clearCancel{ slot };

	auto endpoints = co_await resolver.async_resolve(options.host, options.port,
							 asio::redirect_error(asio::use_awaitable, ec));
	if (watchdog.expired())
		co_return timedOut("name resolution");
	if (ec)
		co_return fail(toErrno(ec), fmt::format("cannot resolve '{}': {}", options.host, ec.message()));
	co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
	if (watchdog.expired())
		co_return timedOut("connecting");
	if (ec)
		co_return fail(toErrno(ec), fmt::format("cannot connect to {}: {}", target, ec.message()));
	setCloexec(socket);
	socket.set_option(tcp::no_delay(true), ec);

	if (tls) {
		channel = std::make_unique<Channel>(std::move(socket), *tls);
		channel->verifyPeerName(options.tls.serverName.empty() ? options.host : options.tls.serverName);
		ec = co_await channel->handshake(asio::ssl::stream_base::client);
		if (watchdog.expired())
			co_return timedOut("the TLS handshake");
		if (ec)
			co_return fail(EPROTO, fmt::format("{}: TLS handshake failed: {}", target,
							   isTlsError(ec)
								   ? describeTlsError(ec, channel->sslHandle())
								   : describeSetupFailure(ec, *channel, "the TLS handshake")));
	} else {
		channel = std::make_unique<Channel>(std::move(socket));
	}
	auto reply = co_await hello(*channel, slot);
	if (watchdog.expired())
		co_return timedOut("the hello (the server may still be finishing the requests of the connection "
				   "this one replaces)");
	if (!reply)
		co_return fail(reply.error().code, fmt::format("{}: {}", target, reply.error().message));
	if (!reply->fenced && !warnedUnfenced) {
		log->warn("{}: the server does not fence reconnects (an older r3serve?): a write re-sent after a "
			  "lost connection may be overtaken by its first copy",
			  where);
		warnedUnfenced = true;
	}
	if (!haveInfo) {
		info = RemoteExportInfo{ reply->size, reply->chunkSize, reply->maxPayload, reply->maxInFlight,
					 reply->readOnly };
		maxPayload = std::min(options.maxPayload, reply->maxPayload ? reply->maxPayload : options.maxPayload);
		maxInFlight = std::min(options.maxInFlight, reply->maxInFlight ? reply->maxInFlight : options.maxInFlight);
		haveInfo = true;
	}
	co_return std::make_shared<Connection>(std::move(channel));
}

asio::awaitable<void> RpcClient::Impl::slotLoop(Slot &slot)
{
	auto backoff = options.backoffInitial;
	std::string lastFailure;
	auto downSince = Clock::now();
	bool everConnected = slot.connection != nullptr;
	while (!stopping) {
		if (!slot.connection) {
			auto c = co_await establish(slot);
			if (stopping)
				break;
			if (!c) {
				if (c.error().message != lastFailure)
					log->warn("{}: reconnecting: {}", where, c.error().message);
				lastFailure = c.error().message;
				setLastError(lastFailure);
				co_await slot.wake.waitFor(backoff);
				backoff = std::min(backoff * 2, options.backoffMax);
				continue;
			}
			if (everConnected) {
				reconnects++;
				log->info("{}: reconnected after {} ms", where,
					  std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - downSince)
						  .count());
			}
			everConnected = true;
			lastFailure.clear();
			setLastError({});
			slot.connection = *c;
			// The hello fenced this slot's older connections: its writes may go again.
			slot.fencePending = slot.unfenced = false;
			wakeWriters();
		}
		backoff = options.backoffInitial;
		auto c = slot.connection;
		asio::co_spawn(io, writeLoop(slot, c), [c](std::exception_ptr) {
			c->writerDone = true;
			c->writerGone.notify();
		});
		co_await readLoop(*c);
		c->close(c->why.empty() ? "closed" : c->why);
		while (!c->writerDone)
			co_await c->writerGone.wait();
		slot.connection.reset();
		size_t carried = std::count_if(c->inFlight.begin(), c->inFlight.end(), [](auto &e) { return e.second; });
		requeue(slot, *c);
		if (!stopping) {
			log->warn("{}: connection lost ({}); {} requests in flight will be sent again", where, c->why,
				  carried);
			downSince = Clock::now();
		}
	}
}

asio::awaitable<void> RpcClient::Impl::writeLoop(Slot &slot, std::shared_ptr<Connection> c)
{
	SendBatch batch;
	std::vector<Call *> sending;
	for (;;) {
		while (!c->closed && !hasWork(slot, *c))
			co_await c->writerWake.wait();
		if (c->closed)
			co_return;
		batch.clear();
		sending.clear();
		size_t bytes = 0;
		bool hold = holdWrites();
		// Leave a fair share of the queues to the other connections; the slot's own
		// re-sent calls go first and count against nothing but the connection's limits.
		size_t live = std::count_if(slots.begin(), slots.end(), [](auto &s) { return s->connection; });
		size_t queued = pendingWrites.size() + pendingOthers.size();
		size_t share = std::min(kMaxCallsPerWrite, (queued + live - 1) / std::max<size_t>(live, 1));
		if (c->inFlight.empty())
			c->busySince = Clock::now(); // idle until now: the timeout starts here
		size_t fromQueues = 0;
		while (c->inFlight.size() < maxInFlight && sending.size() < kMaxCallsPerWrite && bytes < kMaxBytesPerWrite) {
			Call *call = nullptr;
			if (!hold && !slot.resend.empty()) {
				call = slot.resend.front();
				slot.resend.pop_front();
			} else if (fromQueues < share && (call = popPending(hold))) {
				fromQueues++;
			}
			if (!call)
				break;
			call->writing = true;
			c->inFlight[call->request.id] = call;
			appendFrame(batch.text(), call->request, static_cast<uint32_t>(call->out.size()));
			batch.addPayload(call->out);
			bytes += call->out.size();
			sending.push_back(call);
		}
		auto ec = co_await c->channel->write(batch.buffers());
		for (Call *call : sending) {
			call->writing = false;
			if (call->answered)
				complete(call, call->error, call->size);
		}
		if (ec) {
			c->close(describeFailure(ec, *c->channel, "sending"));
			co_return;
		}
	}
}

asio::awaitable<void> RpcClient::Impl::readLoop(Connection &c)
{
	const FrameLimits limits{ FrameLimits::kDefaultMaxMeta, maxPayload };
	std::vector<std::byte> meta;
	for (;;) {
		FrameHeader header;
		std::string reason;
		if (auto ec = co_await c.channel->readFrame(FrameKind::Response, limits, header, meta, reason)) {
			if (!c.closed)
				c.why = reason.empty() ? describeFailure(ec, *c.channel, "receiving") : reason;
			co_return;
		}
		auto response = decodeResponse(meta);
		if (!response) {
			c.why = response.error().message;
			co_return;
		}
		// By key, never through an iterator: the writer adds to the map while this
		// coroutine waits for payload bytes.
		auto it = c.inFlight.find(response->id);
		if (it == c.inFlight.end()) {
			c.why = fmt::format("reply to request {}, which is not in flight", response->id);
			co_return;
		}
		Call *call = it->second;
		if (!call) { // its caller gave up; drop the reply
			if (header.payloadLength > 0 && co_await c.channel->skip(header.payloadLength))
				co_return;
			c.inFlight.erase(response->id);
			c.writerWake.notify();
			continue;
		}
		uint64_t expected = response->error ? 0 : replyPayloadLength(call->request);
		if (header.payloadLength != expected) {
			c.why = fmt::format("reply to {} request {} carries {} bytes, expected {}", opName(call->request.op),
					    response->id, header.payloadLength, expected);
			co_return;
		}
		if (expected > 0) {
			call->receiving = true;
			auto ec = co_await c.channel->readExact(call->in.first(expected));
			call->receiving = false;
			if (ec) {
				if (!c.closed)
					c.why = describeFailure(ec, *c.channel, "receiving");
				co_return;
			}
		}
		c.inFlight.erase(response->id);
		if (call->writing) {
			call->error = response->error;
			call->size = response->size;
			call->answered = true;
		} else {
			complete(call, response->error, response->size);
		}
		c.writerWake.notify();
	}
}

uint64_t RpcClient::Impl::sweepConnection(Connection &c, Clock::time_point now)
{
	if (!c.inFlight.empty() && now - c.progress() > options.requestTimeout) {
		log->warn("{}: no progress for {} ms with {} requests in flight; reconnecting", where,
			  options.requestTimeout.count(), c.inFlight.size());
		c.close("request timeout", true);
		return 0;
	}
	uint64_t gaveUp = 0;
	for (auto &[id, call] : c.inFlight) {
		if (!call || now < call->deadline)
			continue;
		if (call->mutating()) {
			// Failing it alone would leave its copy free to land later: reset the
			// connection, so the slot's next hello fences it.
			log->warn("{}: a {} passed its deadline in flight; resetting the connection", where,
				  opName(call->request.op));
			c.close("a write passed its deadline", true);
			return gaveUp;
		}
		// A read whose bytes are not being moved can be failed now; its reply, if any,
		// is dropped when it arrives.
		if (!call->busy()) {
			complete(call, EIO, 0);
			call = nullptr;
			gaveUp++;
		}
	}
	return gaveUp;
}

asio::awaitable<void> RpcClient::Impl::sweepLoop()
{
	while (!stopping) {
		co_await sweepWake->waitFor(kSweepInterval);
		if (stopping)
			co_return;
		auto now = Clock::now();
		uint64_t gaveUp = expire(pendingWrites, now) + expire(pendingOthers, now);
		for (auto &slot : slots) {
			size_t lost = expire(slot->resend, now);
			if (lost > 0 && slot->fencePending)
				slot->unfenced = true;
			gaveUp += lost;
			if (slot->connection && !slot->connection->closed)
				gaveUp += sweepConnection(*slot->connection, now);
		}
		if (gaveUp > 0) {
			expired += gaveUp;
			log->error("{}: {} requests failed with EIO: not done within the {} ms deadline", where, gaveUp,
				   options.deadline.count());
		}
	}
}

Result<uint64_t> RpcClient::Impl::runOne(Op op, uint64_t offset, uint64_t length)
{
	Call call;
	call.request = Request{ 0, op, offset, length, {} };
	submit(call);
	R3D_TRY(wait(call));
	return call.size;
}

Result<void> RpcClient::Impl::runSplit(Op op, uint64_t offset, uint64_t length, std::span<std::byte> in,
				       std::span<const std::byte> out)
{
	uint64_t piece = maxPayload;
	if (length <= piece) {
		Call call;
		call.request = Request{ 0, op, offset, length, {} };
		call.in = in;
		call.out = out;
		submit(call);
		return wait(call);
	}
	std::deque<Call> calls;
	for (uint64_t pos = 0; pos < length; pos += piece) {
		uint64_t n = std::min(piece, length - pos);
		auto &call = calls.emplace_back();
		call.request = Request{ 0, op, offset + pos, n, {} };
		if (!in.empty())
			call.in = in.subspan(pos, n);
		if (!out.empty())
			call.out = out.subspan(pos, n);
		submit(call);
	}
	Result<void> result;
	for (auto &call : calls) {
		auto r = wait(call);
		if (!r && result)
			result = r;
	}
	return result;
}

void RpcClient::Impl::stop()
{
	if (!thread.joinable())
		return;
	asio::post(io, [this] {
		stopping = true;
		for (auto &slot : slots) {
			if (slot->cancelConnect)
				slot->cancelConnect();
			// Reset: what the callers gave up on must not reach the server later.
			if (slot->connection)
				slot->connection->close("client closed", true);
			slot->wake.notify();
		}
		sweepWake->notify();
	});
	work.reset();
	thread.join();
	auto cancel = [this](std::deque<Call *> &queue) {
		for (Call *call : queue)
			complete(call, ECANCELED, 0);
		queue.clear();
	};
	cancel(pendingWrites);
	cancel(pendingOthers);
	for (auto &slot : slots)
		cancel(slot->resend);
}

ResultMsg<std::unique_ptr<RpcClient>> RpcClient::connect(RpcClientOptions options)
{
	if (options.connections == 0 || options.maxInFlight == 0 || options.maxPayload == 0)
		return fail(EINVAL, "r3: connections, in-flight and payload limits must be at least 1");
	auto impl = std::make_unique<Impl>();
	impl->where = fmt::format("{}:{}/{}", options.host, options.port, options.exportName);
	if (options.tls.enabled) {
		auto tls = makeClientTlsContext(options.tls);
		if (!tls)
			return unexpectedOf(tls.error());
		impl->tls = *tls;
	}
	impl->options = std::move(options);
	auto *i = impl.get();
	i->sessionId.resize(kSessionIdSize);
	if (RAND_bytes(reinterpret_cast<unsigned char *>(i->sessionId.data()), static_cast<int>(kSessionIdSize)) != 1)
		return fail(EIO, "r3: no random bytes for the session id");
	for (unsigned n = 0; n < i->options.connections; ++n)
		i->slots.push_back(std::make_unique<Slot>(i->io.get_executor(), n));
	i->sweepWake.emplace(i->io.get_executor());
	i->work.emplace(i->io.get_executor());
	i->thread = std::thread([i] { i->io.run(); });

	// The first connection is made here, so a wrong address, certificate or token is
	// reported to the caller at once instead of being retried.
	std::promise<ResultMsg<std::shared_ptr<Connection>>> first;
	asio::co_spawn(i->io, i->establish(*i->slots[0]),
		       [&first](std::exception_ptr e, ResultMsg<std::shared_ptr<Connection>> r) {
			       if (e)
				       r = fail(EIO, "connection setup failed unexpectedly");
			       first.set_value(std::move(r));
		       });
	auto connected = first.get_future().get();
	if (!connected) {
		i->stop();
		return unexpectedOf(connected.error());
	}
	asio::post(i->io, [i, c = std::move(*connected)] {
		i->slots[0]->connection = c;
		for (auto &slot : i->slots)
			asio::co_spawn(i->io, i->slotLoop(*slot), asio::detached);
		asio::co_spawn(i->io, i->sweepLoop(), asio::detached);
	});
	return std::unique_ptr<RpcClient>(new RpcClient(std::move(impl)));
}

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcClient::~RpcClient()
{
	impl_->stop();
}

const RemoteExportInfo &RpcClient::info() const
{
	return impl_->info;
}

Result<void> RpcClient::read(std::span<std::byte> buf, uint64_t offset)
{
	return impl_->runSplit(Op::Read, offset, buf.size(), buf, {});
}

Result<void> RpcClient::write(std::span<const std::byte> buf, uint64_t offset)
{
	return impl_->runSplit(Op::Write, offset, buf.size(), {}, buf);
}

Result<void> RpcClient::readRanges(std::span<const IoRange> ranges, std::span<std::byte> out)
{
	uint64_t total = 0;
	for (const auto &r : ranges)
		total += r.length;
	if (total != out.size())
		return unexpected(EINVAL);
	// Ranges are grouped into requests of at most kMaxRanges ranges and maxPayload bytes;
	// a range larger than that travels as plain reads.
	std::deque<Call> calls;
	Result<void> result;
	size_t pos = 0;
	for (size_t i = 0; i < ranges.size();) {
		if (ranges[i].length > impl_->maxPayload) {
			auto r = read(out.subspan(pos, ranges[i].length), ranges[i].offset);
			if (!r && result)
				result = r;
			pos += ranges[i].length;
			++i;
			continue;
		}
		auto &call = calls.emplace_back();
		call.request.op = Op::ReadRanges;
		uint64_t bytes = 0;
		while (i < ranges.size() && call.request.ranges.size() < kMaxRanges &&
		       bytes + ranges[i].length <= impl_->maxPayload) {
			call.request.ranges.push_back(ranges[i]);
			bytes += ranges[i].length;
			++i;
		}
		call.in = out.subspan(pos, bytes);
		pos += bytes;
		impl_->submit(call);
	}
	for (auto &call : calls) {
		auto r = impl_->wait(call);
		if (!r && result)
			result = r;
	}
	return result;
}

Result<void> RpcClient::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(impl_->runOne(Op::Trim, offset, length));
	return {};
}

Result<void> RpcClient::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(impl_->runOne(Op::WriteZeroes, offset, length));
	return {};
}

Result<void> RpcClient::sync()
{
	R3D_TRY(impl_->runOne(Op::Sync, 0, 0));
	return {};
}

Result<uint64_t> RpcClient::remoteSize()
{
	return impl_->runOne(Op::Size, 0, 0);
}

RpcClientStats RpcClient::stats() const
{
	std::lock_guard lock(impl_->lastErrorMutex);
	return RpcClientStats{ impl_->reconnects, impl_->resent, impl_->expired, impl_->lastError };
}

} // namespace r3d::transport
