#include "transport/rpc_server.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>


#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <r3d/log.hpp>
#include <r3d/unique_fd.hpp>

#include "base/buffer_pool.hpp"
#include "stages/chunk_range.hpp"
#include "stages/chunked_read_writer_at.hpp"
#include "transport/channel.hpp"
#include "transport/host_port.hpp"
#include "transport/in_flight_budget.hpp"
#include "transport/messages.hpp"
#include "transport/request_check.hpp"
#include "transport/tls.hpp"
#include "transport/token.hpp"

namespace r3d::transport {

namespace {

constexpr size_t kMaxRepliesPerWrite = 256;

/// A request's or reply's bytes, leased from the session's pool so that steady traffic
/// does not allocate; a reused buffer is not zero-filled first (a read overwrites it).
struct Payload {
	BufferPool::Lease lease;
	size_t size = 0;

	static Payload make(BufferPool &pool, size_t n)
	{
		auto lease = pool.acquire(n);
		if (lease.bytes().size() < n)
			lease.bytes().resize(n);
		return Payload{ std::move(lease), n };
	}
	std::span<std::byte> span() { return { lease.bytes().data(), size }; }
};

struct Reply {
	std::string head; ///< frame header + Response
	Payload payload;
	uint64_t charge = 0; ///< bytes held against the connection's in-flight budget
	InFlightBudget::Reservation reservation; ///< and against the server's
};

struct ServedExport {
	RpcExport exp;
	std::shared_ptr<ReadWriterAt> target; ///< the backend, behind a chunk guard when chunked
	ExportGeometry geometry;
};

} // namespace

struct RpcServer::Impl {
	explicit Impl(RpcServerOptions o) : options(std::move(o)), budget(options.maxTotalInFlightBytes) {}

	RpcServerOptions options;
	std::shared_ptr<asio::ssl::context> tls;
	std::string token;
	std::vector<ServedExport> exports;
	std::shared_ptr<spdlog::logger> log = log::get("transport");

	std::atomic<uint64_t> connections{ 0 }, activeConnections{ 0 }, refused{ 0 }, requests{ 0 }, errors{ 0 },
		bytesRead{ 0 }, bytesWritten{ 0 }, fenced{ 0 }, writeTimeouts{ 0 };

	// Network thread only.
	std::unordered_set<RpcSession *> sessions; ///< until their backend calls have returned
	InFlightBudget budget;
	unsigned pendingHellos = 0;
	Clock::time_point lastCapWarning;

	std::atomic<bool> stopped{ false };
	bool started = false;
	std::thread thread;

	// Declared last: destroyed first, while the members above still exist for the
	// coroutine frames and jobs they own.
	asio::io_context io{ 1 };
	std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
	std::optional<asio::thread_pool> workers;

	const ServedExport *findExport(const std::string &name) const;
	std::string exportNames() const;
	asio::awaitable<void> acceptLoop(tcp::acceptor &acceptor);
	asio::awaitable<void> sweepLoop();
	/// A closed session's last backend call returned: wake the hellos waiting on it.
	void backendIdle();
	/// Whether to warn about a refusal at a cap now: at most once a second.
	bool capWarningDue();
};

/// One client connection: TLS and hello, then a reader that validates and dispatches
/// requests and a writer that sends replies as they complete, in any order.
class RpcSession : public std::enable_shared_from_this<RpcSession>
{
public:
	RpcSession(RpcServer::Impl &server, tcp::socket socket)
		: server_(server), socket_(std::move(socket)), peer_(describePeer(socket_)),
		  buffers_(server.options.maxInFlight + 4, 4 * 1024 * 1024), writerWake_(server.io.get_executor()), readerWake_(server.io.get_executor()),
		  fenceWake_(server.io.get_executor()), idleWake_(server.io.get_executor())
	{
		server_.pendingHellos++;
	}

	asio::awaitable<void> run();
	/// Stops reading and writing and drops queued backend calls; running ones finish.
	/// `abortive`: reset the connection, so nothing unread or unsent is delivered.
	void close(bool abortive = false);
	/// Whether a write of replies has made no progress for `timeout`.
	bool writeStalled(Clock::time_point now, std::chrono::milliseconds timeout) const;
	/// Whether a backend call of this session that changes the export is running.
	bool backendBusy();
	void wakeFence() { fenceWake_.notify(); }
	void wakeIdle() { idleWake_.notify(); }
	const std::string &peer() const { return peer_; }

private:
	asio::awaitable<bool> greet();
	asio::awaitable<bool> refuse(int error, const std::string &message);
	/// Closes the older connections of this client slot and waits for their backend calls.
	asio::awaitable<bool> fence();
	bool sameSlot(const RpcSession &other) const
	{
		return !clientSession_.empty() && other.clientSession_ == clientSession_ && other.slot_ == slot_;
	}
	void helloDone();
	asio::awaitable<void> readLoop();
	asio::awaitable<void> writeLoop();
	void dispatch(Request request, Payload payload, InFlightBudget::Reservation reservation);
	int execute(const Request &r, Payload &payload);
	/// Worker side of a backend call: false when the session was closed first. Calls that
	/// change the export are counted, for fences.
	bool enterBackend(Op op);
	void leaveBackend(Op op);
	void queueReply(uint64_t id, int error, uint64_t size, Payload payload, uint64_t charge,
			InFlightBudget::Reservation reservation = {});

	RpcServer::Impl &server_;
	tcp::socket socket_; ///< until the Channel takes it
	std::unique_ptr<Channel> channel_;
	std::string peer_;
	BufferPool buffers_; ///< before everything that holds its leases
	const ServedExport *export_ = nullptr;
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
	bool fenced_ = false;  ///< counted in stats().fenced
	// Who this connection is (Hello::session, slot, incarnation); empty session: unfenced.
	std::string clientSession_;
	uint32_t slot_ = 0;
	uint64_t incarnation_ = 0;
	// Shared with the workers.
	std::mutex backendMutex_;
	bool cancelled_ = false;
	unsigned running_ = 0; ///< running backend calls that change the export
};

asio::awaitable<void> RpcSession::run()
{
	auto self = shared_from_this();
	if (co_await greet()) {
		asio::co_spawn(
			server_.io, [self] { return self->writeLoop(); },
			[self](std::exception_ptr) {
				self->writerDone_ = true;
				self->readerWake_.notify();
			});
		co_await readLoop();
		close();
		while (!writerDone_)
			co_await readerWake_.wait();
	} else {
		server_.refused++;
		close();
	}
	helloDone();
	// A hello of this client's next connection may be waiting for these calls: stay
	// visible to it until they have returned.
	while (backendBusy())
		co_await idleWake_.wait();
	server_.sessions.erase(this);
	server_.activeConnections--;
	server_.log->debug("{}: connection closed", peer_);
}

void RpcSession::close(bool abortive)
{
	if (closed_)
		return;
	closed_ = true;
	{
		std::lock_guard lock(backendMutex_);
		cancelled_ = true;
	}
	if (channel_ && abortive) {
		channel_->abort();
	} else if (channel_) {
		channel_->close();
	} else {
		ErrorCode ignored;
		socket_.close(ignored); // not even greeted: nothing was read from it
	}
	outbox_.clear();
	server_.budget.leave(readerWake_);
	writerWake_.notify();
	readerWake_.notify();
	fenceWake_.notify();
}

bool RpcSession::writeStalled(Clock::time_point now, std::chrono::milliseconds timeout) const
{
	return !closed_ && channel_ && channel_->writing() && now - channel_->writeProgress() > timeout;
}

bool RpcSession::backendBusy()
{
	std::lock_guard lock(backendMutex_);
	return running_ > 0;
}

bool RpcSession::enterBackend(Op op)
{
	std::lock_guard lock(backendMutex_);
	if (cancelled_)
		return false;
	if (changesData(op))
		running_++;
	return true;
}

void RpcSession::leaveBackend(Op op)
{
	if (!changesData(op))
		return;
	bool idle;
	{
		std::lock_guard lock(backendMutex_);
		idle = --running_ == 0 && cancelled_;
	}
	if (idle)
		asio::post(server_.io, [self = shared_from_this()] {
			self->wakeIdle();
			self->server_.backendIdle();
		});
}

void RpcSession::helloDone()
{
	if (greeting_) {
		greeting_ = false;
		server_.pendingHellos--;
	}
}

asio::awaitable<bool> RpcSession::refuse(int error, const std::string &message)
{
	server_.log->warn("{}: refused: {}", peer_, message);
	HelloReply reply;
	reply.error = error;
	reply.message = message;
	std::string frame;
	appendFrame(frame, reply);
	co_await channel_->write(frame);
	co_return false;
}

asio::awaitable<bool> RpcSession::greet()
{
	const auto &options = server_.options;
	Watchdog watchdog(server_.io.get_executor(), options.handshakeTimeout, [this] { close(); });
	auto timeoutOr = [&](const ErrorCode &ec) {
		return watchdog.expired()
			       ? fmt::format("no hello within {} ms", options.handshakeTimeout.count())
			       : ec.message();
	};

	// Peek at the first byte to tell a TLS ClientHello from our plaintext frame magic, so
	// a mismatched client gets a reason instead of garbage.
	std::array<std::byte, 1> first{};
	ErrorCode ec;
	co_await socket_.async_receive(asio::buffer(first), tcp::socket::message_peek,
				       asio::redirect_error(asio::use_awaitable, ec));
	if (ec) {
		server_.log->debug("{}: gone before the hello: {}", peer_, timeoutOr(ec));
		co_return false;
	}
	bool clientTls = first[0] == kTlsHandshakeByte;
	if (server_.tls) {
		if (!clientTls) {
			channel_ = std::make_unique<Channel>(std::move(socket_));
			co_return co_await refuse(EPROTO, "this server requires TLS, the client connected without it "
							  "(give the client tls-ca=FILE)");
		}
		channel_ = std::make_unique<Channel>(std::move(socket_), *server_.tls);
		ec = co_await channel_->handshake(asio::ssl::stream_base::server);
		if (ec) {
			server_.log->warn("{}: refused: TLS handshake failed: {}", peer_,
					  watchdog.expired() ? timeoutOr(ec) : describeTlsError(ec, channel_->sslHandle()));
			co_return false;
		}
	} else {
		channel_ = std::make_unique<Channel>(std::move(socket_));
		if (clientTls) {
			server_.log->warn("{}: refused: the client started TLS, but this server has no certificate "
					  "(start it with --tls-cert and --tls-key)",
					  peer_);
			co_return false;
		}
	}

	FrameHeader header;
	std::vector<std::byte> meta;
	std::string reason;
	ec = co_await channel_->readFrame(FrameKind::Hello, FrameLimits{ kMaxHelloMeta, 0 }, header, meta, reason);
	if (ec) {
		server_.log->warn("{}: refused: {}", peer_, reason.empty() ? timeoutOr(ec) : reason);
		co_return false;
	}
	auto hello = decodeHello(meta);
	if (!hello) {
		server_.log->warn("{}: refused: {}", peer_, hello.error().message);
		co_return false;
	}
	if (hello->version != kProtocolVersion)
		co_return co_await refuse(EPROTONOSUPPORT, fmt::format("protocol version {} is not supported (server speaks {})",
									hello->version, kProtocolVersion));
	// Authentication first: who has no token learns nothing about the exports. A client
	// that passed mutual TLS is authenticated by its certificate.
	if (!server_.token.empty() && !tokensEqual(hello->token, server_.token))
		co_return co_await refuse(EACCES, hello->token.empty()
							  ? "authentication failed: this server requires a token (token-file=FILE)"
							  : "authentication failed: the token does not match");
	helloDone();
	export_ = server_.findExport(hello->exportName);
	if (!export_)
		co_return co_await refuse(ENOENT, fmt::format("no export named '{}' (exports: {})", hello->exportName,
							      server_.exportNames()));
	clientSession_ = hello->session;
	slot_ = hello->slot;
	incarnation_ = hello->incarnation;
	if (!co_await fence())
		co_return false;

	HelloReply reply;
	reply.size = export_->geometry.size;
	reply.chunkSize = export_->geometry.chunkSize;
	reply.maxPayload = export_->geometry.maxPayload;
	reply.maxInFlight = options.maxInFlight;
	reply.readOnly = export_->geometry.readOnly;
	reply.server = "r3map";
	reply.fenced = !clientSession_.empty();
	std::string frame;
	appendFrame(frame, reply);
	ec = co_await channel_->write(frame);
	if (ec || closed_)
		co_return false;
	server_.log->info("{}: connected to export '{}'{}{}", peer_, export_->exp.name,
			  hello->clientName.empty() ? "" : " by ", hello->clientName);
	co_return true;
}

asio::awaitable<bool> RpcSession::fence()
{
	if (clientSession_.empty())
		co_return true;
	for (auto *s : server_.sessions) {
		if (s != this && sameSlot(*s) && s->incarnation_ >= incarnation_) {
			co_return co_await refuse(ESTALE, fmt::format("connection {} of slot {} is older than one already "
								      "seen ({})",
								      incarnation_, slot_, s->incarnation_));
		}
	}
	for (;;) {
		bool busy = false;
		for (auto *s : server_.sessions) {
			if (s == this || !sameSlot(*s) || s->incarnation_ >= incarnation_)
				continue;
			bool running = s->backendBusy();
			if (!s->fenced_ && (!s->closed_ || running)) {
				s->fenced_ = true;
				server_.fenced++;
			}
			if (!s->closed_) {
				server_.log->info("{}: replaced by {} (connection {} of the client's slot {}); closing it",
						  s->peer_, peer_, incarnation_, slot_);
				s->close(true);
			}
			busy = busy || running;
		}
		if (!busy || closed_)
			co_return !closed_;
		server_.log->debug("{}: waiting for the backend calls of the connection it replaces", peer_);
		co_await fenceWake_.wait();
	}
}

asio::awaitable<void> RpcSession::readLoop()
{
	const auto &options = server_.options;
	const FrameLimits limits{ FrameLimits::kDefaultMaxMeta, options.maxPayload };
	std::vector<std::byte> meta;
	for (;;) {
		while (!closed_ && (inFlight_ >= options.maxInFlight || inFlightBytes_ >= options.maxInFlightBytes))
			co_await readerWake_.wait();
		if (closed_)
			co_return;
		FrameHeader header;
		std::string reason;
		auto ec = co_await channel_->readFrame(FrameKind::Request, limits, header, meta, reason);
		if (ec) {
			if (!reason.empty())
				server_.log->warn("{}: closing the connection: {}", peer_, reason);
			co_return;
		}
		auto request = decodeRequest(meta);
		if (!request) {
			server_.log->warn("{}: closing the connection: {}", peer_, request.error().message);
			co_return;
		}
		if (closed_)
			co_return;
		server_.requests++;
		inFlight_++; // every request gets exactly one reply, which gives the slot back
		if (int err = checkRequest(*request, header.payloadLength, export_->geometry)) {
			server_.log->debug("{}: {} {}+{} refused: {}", peer_, opName(request->op), request->offset,
					   request->length, std::strerror(err));
			if (header.payloadLength > 0 && co_await channel_->skip(header.payloadLength))
				co_return;
			queueReply(request->id, err, 0, {}, 0);
			continue;
		}
		uint64_t bytes = request->op == Op::Write ? header.payloadLength : replyPayloadLength(*request);
		InFlightBudget::Reservation reservation;
		while (bytes > 0) {
			if (auto r = server_.budget.tryReserve(bytes, readerWake_)) {
				reservation = std::move(*r);
				break;
			}
			co_await readerWake_.wait();
			if (closed_)
				co_return;
		}
		Payload payload;
		if (request->op == Op::Write) {
			payload = Payload::make(buffers_, header.payloadLength);
			if (co_await channel_->readExact(payload.span()))
				co_return;
		} else if (bytes > 0) {
			payload = Payload::make(buffers_, bytes);
		}
		if (closed_)
			co_return;
		dispatch(std::move(*request), std::move(payload), std::move(reservation));
	}
}

void RpcSession::dispatch(Request request, Payload payload, InFlightBudget::Reservation reservation)
{
	if (request.op == Op::Size) {
		queueReply(request.id, 0, export_->geometry.size, {}, 0);
		return;
	}
	uint64_t charge = payload.size;
	inFlightBytes_ += charge;
	if (export_->target->isFast()) {
		int err = execute(request, payload);
		queueReply(request.id, err, 0, std::move(payload), charge, std::move(reservation));
		return;
	}
	asio::post(*server_.workers, [self = shared_from_this(), request = std::move(request),
				      payload = std::move(payload), charge, reservation = std::move(reservation)]() mutable {
		int err = ECANCELED; // closed before it ran: nobody reads the reply
		if (self->enterBackend(request.op)) {
			err = self->execute(request, payload);
			self->leaveBackend(request.op);
		}
		asio::post(self->server_.io, [self, id = request.id, err, payload = std::move(payload), charge,
					      reservation = std::move(reservation)]() mutable {
			self->queueReply(id, err, 0, std::move(payload), charge, std::move(reservation));
		});
	});
}
int RpcSession::execute(const Request &r, Payload &payload)
{
	ReadWriterAt &rw = *export_->target;
	const auto &g = export_->geometry;
	Result<void> result;
	switch (r.op) {
	case Op::Read:
		result = rw.readAt(payload.span(), r.offset);
		break;
	case Op::Write:
		result = rw.writeAt(payload.span(), r.offset);
		if (result)
			server_.bytesWritten += payload.size;
		payload = {};
		break;
	case Op::Trim:
	case Op::WriteZeroes: {
		auto discard = [&](uint64_t offset, uint64_t length) {
			return r.op == Op::Trim ? rw.trim(offset, length) : rw.writeZeroes(offset, length);
		};
		if (g.chunkSize == 0) {
			result = discard(r.offset, r.length);
			break;
		}
		// checkRequest let only whole chunks through; the guard takes them one at a time.
		result = stages::forEachChunk(r.offset, r.length, g.chunkSize, g.size, [&](const stages::ChunkPiece &p) {
			return discard(p.chunkOffset(g.chunkSize), p.length);
		});
		break;
	}
	case Op::Sync:
		result = rw.sync();
		break;
	case Op::ReadRanges: {
		size_t pos = 0;
		for (const auto &range : r.ranges) {
			result = rw.readAt(payload.span().subspan(pos, range.length), range.offset);
			if (!result)
				break;
			pos += range.length;
		}
		break;
	}
	case Op::Size:
		break;
	}
	if (!result)
		return result.error().value();
	if (r.op == Op::Read || r.op == Op::ReadRanges)
		server_.bytesRead += payload.size;
	return 0;
}

void RpcSession::queueReply(uint64_t id, int error, uint64_t size, Payload payload, uint64_t charge,
			    InFlightBudget::Reservation reservation)
{
	if (closed_)
		return;
	if (error) {
		server_.errors++;
		payload = {};
	}
	if (payload.size == 0)
		reservation.reset(); // a write's data is gone once it ran
	Reply reply;
	appendFrame(reply.head, Response{ id, error, size }, static_cast<uint32_t>(payload.size));
	reply.payload = std::move(payload);
	reply.charge = charge;
	reply.reservation = std::move(reservation);
	outbox_.push_back(std::move(reply));
	writerWake_.notify();
}

asio::awaitable<void> RpcSession::writeLoop()
{
	SendBatch batch;
	std::vector<Reply> sending;
	for (;;) {
		while (!closed_ && outbox_.empty())
			co_await writerWake_.wait();
		if (closed_)
			co_return;
		batch.clear();
		sending.clear();
		while (!outbox_.empty() && sending.size() < kMaxRepliesPerWrite) {
			sending.push_back(std::move(outbox_.front()));
			outbox_.pop_front();
		}
		for (auto &reply : sending) {
			batch.text() += reply.head;
			batch.addPayload(reply.payload.span());
		}
		if (co_await channel_->write(batch.buffers())) {
			close();
			co_return;
		}
		for (const auto &reply : sending) {
			inFlight_--;
			inFlightBytes_ -= reply.charge;
		}
		sending.clear(); // gives back what they held
		readerWake_.notify();
	}
}

const ServedExport *RpcServer::Impl::findExport(const std::string &name) const
{
	for (const auto &e : exports)
		if (e.exp.name == name)
			return &e;
	if (name.empty() && !exports.empty())
		return &exports.front();
	return nullptr;
}

std::string RpcServer::Impl::exportNames() const
{
	std::string out;
	for (const auto &e : exports)
		out += (out.empty() ? "'" : ", '") + e.exp.name + "'";
	return out.empty() ? "none" : out;
}

asio::awaitable<void> RpcServer::Impl::acceptLoop(tcp::acceptor &acceptor)
{
	for (;;) {
		ErrorCode ec;
		tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
		if (stopped)
			co_return;
		if (ec) {
			if (ec == asio::error::operation_aborted)
				co_return;
			log->warn("accept: {}", ec.message());
			// Out of descriptors: give the sessions time to close some.
			co_await sleepFor(std::chrono::milliseconds(100));
			continue;
		}
		setCloexec(socket);
		// The socket closes as it goes out of scope.
		if (activeConnections >= options.maxConnections) {
			if (capWarningDue())
				log->warn("{}: refused: already {} connections (the limit)", describePeer(socket),
					  options.maxConnections);
			refused++;
			continue;
		}
		if (pendingHellos >= options.maxPendingHellos) {
			if (capWarningDue())
				log->warn("{}: refused: already {} connections before their hello (the limit)",
					  describePeer(socket), options.maxPendingHellos);
			refused++;
			continue;
		}
		socket.set_option(tcp::no_delay(true), ec);
		connections++;
		activeConnections++;
		auto session = std::make_shared<RpcSession>(*this, std::move(socket));
		sessions.insert(session.get());
		asio::co_spawn(io, [session] { return session->run(); }, asio::detached);
	}
}

asio::awaitable<void> RpcServer::Impl::sweepLoop()
{
	auto interval = std::clamp(options.writeTimeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
	while (!stopped) {
		co_await sleepFor(interval);
		auto now = Clock::now();
		for (auto *session : sessions) {
			if (!session->writeStalled(now, options.writeTimeout))
				continue;
			log->warn("{}: dropping the connection: its client took no reply data for {} ms", session->peer(),
				  options.writeTimeout.count());
			writeTimeouts++;
			session->close(true);
		}
	}
}

void RpcServer::Impl::backendIdle()
{
	for (auto *session : sessions)
		session->wakeFence();
}

bool RpcServer::Impl::capWarningDue()
{
	auto now = Clock::now();
	if (now - lastCapWarning < std::chrono::seconds(1))
		return false;
	lastCapWarning = now;
	return true;
}

ResultMsg<std::unique_ptr<RpcServer>> RpcServer::create(RpcServerOptions options)
{
	if (options.maxPayload == 0 || options.maxInFlight == 0 || options.workerThreads == 0 ||
	    options.maxConnections == 0 || options.maxPendingHellos == 0 || options.maxInFlightBytes == 0 ||
	    options.maxTotalInFlightBytes == 0)
		return fail(EINVAL, "rpc server: payload, in-flight, worker and connection limits must be at least 1");
	if (options.writeTimeout.count() <= 0 || options.handshakeTimeout.count() <= 0)
		return fail(EINVAL, "rpc server: timeouts must be positive");
	std::shared_ptr<asio::ssl::context> tls;
	if (options.tls.enabled() || !options.tls.keyFile.empty() || !options.tls.caFile.empty()) {
		auto made = makeServerTlsContext(options.tls);
		if (!made)
			return unexpectedOf(made.error());
		tls = *made;
	}
	std::string token;
	if (!options.tokenFile.empty()) {
		auto read = readTokenFile(options.tokenFile);
		if (!read)
			return unexpectedOf(read.error());
		token = *read;
	}
	auto impl = std::make_unique<Impl>(std::move(options));
	impl->tls = std::move(tls);
	impl->token = std::move(token);
	if (!impl->token.empty() && !impl->tls)
		impl->log->warn("the token travels in clear text: this server has no TLS (--tls-cert/--tls-key)");
	return std::unique_ptr<RpcServer>(new RpcServer(std::move(impl)));
}

RpcServer::RpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcServer::~RpcServer()
{
	stop();
}

void RpcServer::addExport(RpcExport exp)
{
	ServedExport served;
	served.geometry.size = exp.backend->size();
	served.geometry.chunkSize = exp.chunkSize;
	served.geometry.maxPayload = impl_->options.maxPayload;
	served.geometry.readOnly = exp.readOnly;
	served.target = exp.chunkSize ? std::make_shared<stages::ChunkedReadWriterAt>(exp.backend, exp.chunkSize)
				      : exp.backend;
	served.exp = std::move(exp);
	impl_->exports.push_back(std::move(served));
}

ResultMsg<std::string> RpcServer::listen(const std::string &hostPort)
{
	auto hp = parseHostPort(hostPort);
	if (!hp)
		return unexpectedOf(hp.error());
	ErrorCode ec;
	tcp::resolver resolver(impl_->io);
	auto endpoints = resolver.resolve(hp->host.empty() ? "0.0.0.0" : hp->host, hp->port, tcp::resolver::passive, ec);
	if (ec || endpoints.empty())
		return fail(toErrno(ec), fmt::format("cannot listen on {}: {}", hostPort, ec.message()));
	auto endpoint = endpoints.begin()->endpoint();
	auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
	acceptor->open(endpoint.protocol(), ec);
	if (!ec)
		acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
	if (!ec)
		acceptor->bind(endpoint, ec);
	if (!ec)
		acceptor->listen(asio::socket_base::max_listen_connections, ec);
	if (ec)
		return fail(toErrno(ec), fmt::format("cannot listen on {}: {}", hostPort, ec.message()));
	r3d::setCloexec(acceptor->native_handle());
	auto local = acceptor->local_endpoint(ec);
	std::string address = local.address().is_v6()
				      ? fmt::format("[{}]:{}", local.address().to_string(), local.port())
				      : fmt::format("{}:{}", local.address().to_string(), local.port());
	impl_->acceptors.push_back(std::move(acceptor));
	impl_->log->info("serving {} on {}{}{}", impl_->exportNames(), address, impl_->tls ? " (TLS 1.3" : "",
			 impl_->tls ? (impl_->options.tls.caFile.empty() ? ")" : ", client certificates required)") : "");
	return address;
}

void RpcServer::start()
{
	if (impl_->started || impl_->stopped)
		return;
	impl_->started = true;
	impl_->workers.emplace(impl_->options.workerThreads);
	for (auto &acceptor : impl_->acceptors)
		asio::co_spawn(impl_->io, impl_->acceptLoop(*acceptor), asio::detached);
	asio::co_spawn(impl_->io, impl_->sweepLoop(), asio::detached);
	impl_->thread = std::thread([this] { impl_->io.run(); });
}

void RpcServer::stop()
{
	if (impl_->stopped.exchange(true))
		return;
	if (!impl_->started)
		return;
	// Close everything on the network thread, then let the workers finish what they hold
	// (their replies are dropped), then end the network thread.
	std::promise<void> closed;
	asio::post(impl_->io, [this, &closed] {
		ErrorCode ignored;
		for (auto &acceptor : impl_->acceptors)
			acceptor->close(ignored);
		for (auto *session : impl_->sessions)
			session->close();
		closed.set_value();
	});
	closed.get_future().wait();
	impl_->workers->join();
	impl_->io.stop();
	impl_->thread.join();
}

RpcServerStats RpcServer::stats() const
{
	const auto &i = *impl_;
	return RpcServerStats{ i.connections, i.activeConnections, i.refused, i.requests, i.errors, i.bytesRead,
			       i.bytesWritten, i.fenced, i.writeTimeouts };
}

} // namespace r3d::transport
