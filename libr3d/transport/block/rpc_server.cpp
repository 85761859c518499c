#include "transport/block/rpc_server.hpp"

#include <algorithm>
#include <future>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <r3d/log.hpp>
#include <r3d/unique_fd.hpp>

#include "base/host_port.hpp"
#include "base/runtime.hpp"
#include "stages/chunked_read_writer_at.hpp"
#include "transport/block/rpc_server_state.hpp"
#include "transport/block/rpc_session.hpp"
#include "transport/tls.hpp"
#include "transport/token.hpp"

namespace r3d::transport {

RpcServerState::RpcServerState(Runtime &rt, RpcServerOptions o)
	: runtime(rt), strand(asio::make_strand(rt.io())), options(std::move(o)), log(log::get("transport")),
	  budget(options.maxTotalInFlightBytes)
{
}

struct RpcServer::Impl : RpcServerState {
	using RpcServerState::RpcServerState;

	bool started = false;
	std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
	std::optional<Wakeup> sweepWake;

	asio::awaitable<void> acceptLoop(tcp::acceptor &acceptor);
	asio::awaitable<void> sweepLoop();
	/// Runs `loop` on the strand, holding the drain until it ends.
	void spawn(asio::awaitable<void> loop);
};

const ServedExport *RpcServerState::findExport(const std::string &name) const
{
	for (const auto &e : exports)
		if (e.exp.name == name)
			return &e;
	if (name.empty() && !exports.empty())
		return &exports.front();
	return nullptr;
}

std::string RpcServerState::exportNames() const
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
		tcp::socket socket = co_await acceptor.async_accept(strand, asio::redirect_error(asio::use_awaitable, ec));
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
		asio::co_spawn(strand, [session] { return session->run(); }, asio::detached);
	}
}

asio::awaitable<void> RpcServer::Impl::sweepLoop()
{
	auto interval = std::clamp(options.writeTimeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
	while (!stopped) {
		co_await sweepWake->waitFor(interval);
		if (stopped)
			co_return;
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

void RpcServer::Impl::spawn(asio::awaitable<void> loop)
{
	asio::co_spawn(strand, std::move(loop), [alive = drain.hold()](std::exception_ptr) {});
}

bool RpcServerState::capWarningDue()
{
	auto now = Clock::now();
	if (now - lastCapWarning < std::chrono::seconds(1))
		return false;
	lastCapWarning = now;
	return true;
}

ResultMsg<std::unique_ptr<RpcServer>> RpcServer::create(Runtime &runtime, RpcServerOptions options)
{
	if (options.maxPayload == 0 || options.maxInFlight == 0 || options.maxConnections == 0 ||
	    options.maxPendingHellos == 0 || options.maxInFlightBytes == 0 || options.maxTotalInFlightBytes == 0)
		return fail(EINVAL, "rpc server: payload, in-flight and connection limits must be at least 1");
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
	auto impl = std::make_unique<Impl>(runtime, std::move(options));
	impl->tls = std::move(tls);
	impl->token = std::move(token);
	impl->services.add(kBlockService, [i = impl.get()](const Hello &hello) -> ResultMsg<ServiceBinding> {
		const ServedExport *exp = i->findExport(hello.exportName);
		if (!exp)
			return fail(ENOENT, fmt::format("no export named '{}' (exports: {})", hello.exportName,
							i->exportNames()));
		return ServiceBinding{ exp, nullptr };
	});
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

void RpcServer::addService(std::string name, ChannelServiceFactory factory)
{
	impl_->services.add(std::move(name), [factory = std::move(factory)](const Hello &hello) -> ResultMsg<ServiceBinding> {
		auto service = factory(hello);
		if (!service)
			return unexpectedOf(service.error());
		return ServiceBinding{ nullptr, std::move(*service) };
	});
}

ResultMsg<std::string> RpcServer::listen(const std::string &hostPort)
{
	auto hp = parseHostPort(hostPort);
	if (!hp)
		return unexpectedOf(hp.error());
	ErrorCode ec;
	tcp::resolver resolver(impl_->strand);
	auto endpoints = resolver.resolve(hp->host.empty() ? "0.0.0.0" : hp->host, hp->port, tcp::resolver::passive, ec);
	if (ec || endpoints.empty())
		return fail(toErrno(ec), fmt::format("cannot listen on {}: {}", hostPort, ec.message()));
	auto endpoint = endpoints.begin()->endpoint();
	auto acceptor = std::make_unique<tcp::acceptor>(impl_->strand);
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
	impl_->sweepWake.emplace(impl_->strand);
	for (auto &acceptor : impl_->acceptors)
		impl_->spawn(impl_->acceptLoop(*acceptor));
	impl_->spawn(impl_->sweepLoop());
}

void RpcServer::stop()
{
	if (impl_->stopped.exchange(true))
		return;
	if (!impl_->started)
		return;
	// Close everything on the strand, then wait until the loops and sessions have ended:
	// sessions end once the backend calls they started have returned (their replies are
	// dropped), and queued calls are answered ECANCELED without running.
	asio::post(impl_->strand, [i = impl_.get(), alive = impl_->drain.hold()] {
		ErrorCode ignored;
		for (auto &acceptor : i->acceptors)
			acceptor->close(ignored);
		for (auto *session : i->sessions)
			session->close();
		i->sweepWake->notify();
	});
	impl_->drain.wait();
}

RpcServerStats RpcServer::stats() const
{
	const auto &i = *impl_;
	return RpcServerStats{ i.connections, i.activeConnections, i.refused, i.requests, i.errors, i.bytesRead,
			       i.bytesWritten, i.fencing.fenced(), i.writeTimeouts };
}

Counters counterList(const RpcServerStats &s)
{
	return { { "connections", s.connections },	 { "refused", s.refused },
		 { "requests", s.requests },		 { "errors", s.errors },
		 { "bytes_read", s.bytesRead },		 { "bytes_written", s.bytesWritten },
		 { "fenced", s.fenced },		 { "write_timeouts", s.writeTimeouts },
		 { "active_connections", s.activeConnections } };
}

} // namespace r3d::transport
