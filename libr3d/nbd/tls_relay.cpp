#include "nbd/tls_relay.hpp"

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility> // before Asio 1.18, whose awaitable.hpp uses std::exchange without it
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "transport/tls.hpp"

namespace r3d::nbd {

namespace {

namespace asio = boost::asio;
using ErrorCode = boost::system::error_code;
using NetSocket = asio::generic::stream_protocol::socket;
using LocalSocket = asio::local::stream_protocol::socket;

// Large enough for a few TLS records per read, so bulk data costs few wakeups.
constexpr size_t kBuffer = 256 * 1024;
// How long a closing relay waits for the peer to take close_notify, and a relay whose
// owner goes away while it still runs before it is cut.
constexpr std::chrono::seconds kCloseGrace{ 1 };

constexpr auto kAwait = asio::use_awaitable;

} // namespace

struct TlsRelay::Pump {
	explicit Pump(std::shared_ptr<asio::ssl::context> c)
		: ctx(std::move(c)), tls(io, *ctx), plain(io), readerDone(io), guard(io)
	{
	}

	asio::awaitable<void> fromNetwork();
	asio::awaitable<void> toNetwork();
	void cut()
	{
		ErrorCode ignored;
		tls.next_layer().close(ignored);
		plain.close(ignored);
	}

	asio::io_context io;
	std::shared_ptr<asio::ssl::context> ctx;
	asio::ssl::stream<NetSocket> tls;
	LocalSocket plain;
	UniqueFd callerEnd;
	asio::steady_timer readerDone; ///< fromNetwork() cancels it when it ends
	asio::steady_timer guard;      ///< cuts a relay that outlives its owner's grace
	bool networkDone = false;
	bool closing = false;
	bool finished = false;
	std::thread thread;
};

asio::awaitable<void> TlsRelay::Pump::fromNetwork()
{
	std::vector<char> buf(kBuffer);
	while (!closing) {
		ErrorCode ec;
		size_t n = co_await tls.async_read_some(asio::buffer(buf), asio::redirect_error(kAwait, ec));
		if (ec)
			break;
		co_await asio::async_write(plain, asio::buffer(buf.data(), n), asio::redirect_error(kAwait, ec));
		if (ec)
			break;
	}
	// The peer ended TLS or the network socket was shut down: the caller reads EOF.
	ErrorCode ignored;
	plain.shutdown(asio::socket_base::shutdown_send, ignored);
	networkDone = true;
	readerDone.cancel();
}

asio::awaitable<void> TlsRelay::Pump::toNetwork()
{
	std::vector<char> buf(kBuffer);
	bool clean = false;
	for (;;) {
		ErrorCode ec;
		size_t n = co_await plain.async_read_some(asio::buffer(buf), asio::redirect_error(kAwait, ec));
		if (ec) {
			clean = ec == asio::error::eof;
			break;
		}
		co_await asio::async_write(tls, asio::buffer(buf.data(), n), asio::redirect_error(kAwait, ec));
		if (ec)
			break;
	}
	ErrorCode ignored;
	// The caller's writes fail from now on; its reads end once fromNetwork() does.
	plain.shutdown(asio::socket_base::shutdown_receive, ignored);
	closing = true;
	if (!networkDone) {
		tls.next_layer().cancel(ignored);
		readerDone.expires_at(asio::steady_timer::time_point::max());
		co_await readerDone.async_wait(asio::redirect_error(kAwait, ignored));
	}
	if (clean) {
		// The caller is done: close_notify, so the peer knows nothing was cut off.
		guard.expires_after(kCloseGrace);
		guard.async_wait([this](const ErrorCode &ec) {
			if (!ec)
				cut();
		});
		co_await tls.async_shutdown(asio::redirect_error(kAwait, ignored));
	}
	finished = true;
	guard.cancel();
	cut();
}

TlsRelay::TlsRelay(std::unique_ptr<Pump> pump) : pump_(std::move(pump)) {}

TlsRelay::~TlsRelay()
{
	pump_->callerEnd.reset();
	if (!pump_->thread.joinable())
		return;
	Pump *p = pump_.get();
	asio::post(p->io, [p] {
		if (p->finished)
			return;
		p->guard.expires_after(kCloseGrace);
		p->guard.async_wait([p](const ErrorCode &ec) {
			if (!ec)
				p->cut();
		});
	});
	p->thread.join();
}

UniqueFd TlsRelay::takePlain()
{
	return std::move(pump_->callerEnd);
}

ResultMsg<std::unique_ptr<TlsRelay>> TlsRelay::accept(int socket, std::shared_ptr<asio::ssl::context> ctx,
						      std::chrono::milliseconds timeout)
{
	auto pump = std::make_unique<Pump>(std::move(ctx));
	int domain = AF_INET;
	socklen_t len = sizeof(domain);
	::getsockopt(socket, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	UniqueFd network(::fcntl(socket, F_DUPFD_CLOEXEC, 0));
	int pair[2];
	if (!network || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		return fail(errno, fmt::format("TLS relay: {}", std::strerror(errno)));
	UniqueFd relayEnd(pair[0]);
	pump->callerEnd = UniqueFd(pair[1]);
	ErrorCode ec;
	asio::generic::stream_protocol protocol(domain, domain == AF_UNIX ? 0 : IPPROTO_TCP);
	pump->tls.next_layer().assign(protocol, network.get(), ec);
	if (!ec)
		(void)network.release();
	if (!ec)
		pump->plain.assign(asio::local::stream_protocol(), relayEnd.get(), ec);
	if (ec)
		return fail(ec.value(), fmt::format("TLS relay: {}", ec.message()));
	(void)relayEnd.release();

	ErrorCode handshake = asio::error::would_block;
	bool timedOut = false;
	asio::steady_timer timer(pump->io, timeout);
	pump->tls.async_handshake(asio::ssl::stream_base::server, [&](const ErrorCode &e) {
		handshake = e;
		timer.cancel();
	});
	timer.async_wait([&](const ErrorCode &e) {
		if (e)
			return;
		timedOut = true;
		ErrorCode ignored;
		pump->tls.next_layer().cancel(ignored);
	});
	pump->io.run();
	if (timedOut)
		return fail(ETIMEDOUT, fmt::format("no TLS handshake within {} ms", timeout.count()));
	if (handshake == asio::error::eof || handshake == asio::error::connection_reset ||
	    handshake == asio::ssl::error::stream_truncated)
		// GnuTLS clients (libnbd, qemu) hang up without an alert when they reject us.
		return fail(EPROTO, "the client hung up in the handshake: it may not accept this server's certificate "
				    "(its CA, names or dates) or TLS version");
	if (handshake)
		return fail(EPROTO, transport::describeTlsError(handshake, pump->tls.native_handle()));

	std::unique_ptr<TlsRelay> relay(new TlsRelay(std::move(pump)));
	Pump *p = relay->pump_.get();
	relay->version_ = SSL_get_version(p->tls.native_handle());
	p->io.restart();
	asio::co_spawn(p->io, p->fromNetwork(), asio::detached);
	asio::co_spawn(p->io, p->toNetwork(), asio::detached);
	p->thread = std::thread([p] { p->io.run(); });
	return relay;
}

} // namespace r3d::nbd
