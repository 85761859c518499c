#include "transport/block/rpc_session.hpp"

#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "transport/block/ops.hpp"
#include "transport/block/request_check.hpp"
#include "transport/block/rpc_server_state.hpp"
#include "transport/tls.hpp"
#include "transport/token.hpp"

namespace r3d::transport {

namespace {

constexpr size_t kMaxRepliesPerWrite = 256;

} // namespace

RpcSession::Payload RpcSession::Payload::make(BufferPool &pool, size_t n)
{
	auto lease = pool.acquire(n);
	if (lease.bytes().size() < n)
		lease.bytes().resize(n);
	return Payload{ std::move(lease), n };
}

RpcSession::RpcSession(RpcServerState &server, tcp::socket socket)
	: server_(server), alive_(server.drain.hold()), socket_(std::move(socket)), peer_(describePeer(socket_)),
	  buffers_(server.options.maxInFlight + 4, 4 * 1024 * 1024), writerWake_(server.strand),
	  readerWake_(server.strand), fenceWake_(server.strand), idleWake_(server.strand)
{
	server_.pendingHellos++;
}

RpcSession::~RpcSession() = default;

asio::awaitable<void> RpcSession::run()
{
	auto self = shared_from_this();
	bool greeted = co_await greet();
	if (greeted && service_) {
		co_await service_->run(*channel_, server_.strand);
		close();
	} else if (greeted) {
		asio::co_spawn(
			server_.strand, [self] { return self->writeLoop(); },
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
	while (busy())
		co_await idleWake_.wait();
	server_.fencing.leave(*this);
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
	if (service_)
		service_->close();
	server_.budget.leave(readerWake_);
	writerWake_.notify();
	readerWake_.notify();
	fenceWake_.notify();
}

bool RpcSession::writeStalled(Clock::time_point now, std::chrono::milliseconds timeout) const
{
	return !closed_ && channel_ && channel_->writing() && now - channel_->writeProgress() > timeout;
}

bool RpcSession::busy()
{
	std::lock_guard lock(backendMutex_);
	return running_ > 0;
}

bool RpcSession::enterBackend(const OpHandler &op)
{
	std::lock_guard lock(backendMutex_);
	if (cancelled_)
		return false;
	if (op.changesData)
		running_++;
	return true;
}

void RpcSession::leaveBackend(const OpHandler &op)
{
	if (!op.changesData)
		return;
	bool idle;
	{
		std::lock_guard lock(backendMutex_);
		idle = --running_ == 0 && cancelled_;
	}
	if (idle)
		asio::post(server_.strand, [self = shared_from_this()] {
			self->idleWake_.notify();
			self->server_.fencing.idle();
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
	StepDeadline deadline(server_.strand, options.handshakeTimeout, [this] { close(); });
	auto timeoutOr = [&](const ErrorCode &ec) {
		return deadline.expired() ? fmt::format("no hello within {} ms", options.handshakeTimeout.count())
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
					  deadline.expired() ? timeoutOr(ec) : describeTlsError(ec, channel_->sslHandle()));
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
	// Authentication first: who has no token learns nothing about the services or exports.
	// A client that passed mutual TLS is authenticated by its certificate.
	if (!server_.token.empty() && !tokensEqual(hello->token, server_.token))
		co_return co_await refuse(EACCES, hello->token.empty()
							  ? "authentication failed: this server requires a token (token-file=FILE)"
							  : "authentication failed: the token does not match");
	helloDone();
	auto bound = server_.services.open(hello->service, *hello);
	if (!bound)
		co_return co_await refuse(bound.error().code.value(), bound.error().message);
	if (bound->channel) {
		service_ = std::move(bound->channel); // it answers the hello itself
		server_.log->debug("{}: connected to service '{}'", peer_, hello->service);
		co_return true;
	}
	export_ = bound->exp;
	key_ = FenceKey{ hello->session, hello->slot, hello->incarnation };
	if (!co_await fence())
		co_return false;

	HelloReply reply;
	reply.size = export_->geometry.size;
	reply.chunkSize = export_->geometry.chunkSize;
	reply.maxPayload = export_->geometry.maxPayload;
	reply.maxInFlight = options.maxInFlight;
	reply.readOnly = export_->geometry.readOnly;
	reply.server = "r3map";
	reply.fenced = !key_.session.empty();
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
	if (key_.session.empty())
		co_return true;
	server_.fencing.join(*this);
	if (auto admitted = server_.fencing.admit(*this); !admitted)
		co_return co_await refuse(admitted.error().code.value(), admitted.error().message);
	for (;;) {
		bool busy = server_.fencing.closeOlder(*this);
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
		const OpHandler &op = *findOp(request->op); // checkRequest knew it
		uint64_t bytes = op.carriesPayload ? header.payloadLength : op.replyPayload(*request);
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
		if (bytes > 0)
			payload = Payload::make(buffers_, bytes);
		if (op.carriesPayload && co_await channel_->readExact(payload.span()))
			co_return;
		if (closed_)
			co_return;
		dispatch(op, std::move(*request), std::move(payload), std::move(reservation));
	}
}

void RpcSession::dispatch(const OpHandler &op, Request request, Payload payload,
			  InFlightBudget::Reservation reservation)
{
	if (op.local) {
		uint64_t size = 0;
		int err = execute(op, request, payload, size);
		queueReply(request.id, err, size, {}, 0);
		return;
	}
	uint64_t charge = payload.size;
	inFlightBytes_ += charge;
	if (export_->target->isFast()) {
		uint64_t size = 0;
		int err = execute(op, request, payload, size);
		queueReply(request.id, err, size, std::move(payload), charge, std::move(reservation));
		return;
	}
	auto job = [self = shared_from_this(), &op, request = std::move(request), payload = std::move(payload), charge,
		    reservation = std::move(reservation)]() mutable {
		int err = ECANCELED; // closed before it ran: nobody reads the reply
		uint64_t size = 0;
		if (self->enterBackend(op)) {
			err = self->execute(op, request, payload, size);
			self->leaveBackend(op);
		}
		asio::post(self->server_.strand, [self, id = request.id, err, size, payload = std::move(payload), charge,
						  reservation = std::move(reservation)]() mutable {
			self->queueReply(id, err, size, std::move(payload), charge, std::move(reservation));
		});
	};
	// The pool takes copyable jobs; what this one holds moves.
	server_.runtime.blocking().post([job = std::make_shared<decltype(job)>(std::move(job))] { (*job)(); });
}

int RpcSession::execute(const OpHandler &op, const Request &request, Payload &payload, uint64_t &size)
{
	auto result = op.execute(OpCall{ *export_->target, export_->geometry, request, payload.span() });
	if (!result)
		return result.error().value();
	size = *result;
	if (op.carriesPayload) {
		server_.bytesWritten += payload.size;
		payload = {}; // the reply carries no data; the buffer goes back now
	} else {
		server_.bytesRead += payload.size;
	}
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

} // namespace r3d::transport
