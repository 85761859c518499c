// Session, part 1: construction, run() and stop(). The handshake is in handshake.cpp, the
// transmission phase in transmission.cpp.

#include "nbd/session.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace r3d::nbd {

namespace {

// After stop(), a client that takes no reply bytes for this long is dropped.
constexpr std::chrono::milliseconds kStopGrace{ 3000 };

void setTcpNoDelay(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && (domain == AF_INET || domain == AF_INET6)) {
		int one = 1;
		::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

std::string peerName(int fd)
{
	sockaddr_storage sa{};
	socklen_t len = sizeof(sa);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (::getpeername(fd, reinterpret_cast<sockaddr *>(&sa), &len) != 0)
		return "client";
	if (sa.ss_family == AF_UNIX)
		return "local client";
	if (::getnameinfo(reinterpret_cast<sockaddr *>(&sa), len, host, sizeof(host), port, sizeof(port),
			  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return "client";
	return sa.ss_family == AF_INET6 ? fmt::format("client [{}]:{}", host, port) : fmt::format("client {}:{}", host, port);
}

} // namespace

Session::Session(Server &server, UniqueFd fd)
	: server_(server), fd_(std::move(fd)), io_(fd_.get()), peer_(peerName(fd_.get())),
	  reader_(fd_.get(), kReaderBuffer, [this] { flushBatch(); }),
	  buffers_(server.options().maxInFlight + 4, 4 * 1024 * 1024)
{
	setTcpNoDelay(fd_.get());
}

void Session::stop()
{
	stopRequested_ = true;
	::shutdown(fd_.get(), SHUT_RD);
}

Result<void> Session::send(std::span<const std::byte> bytes)
{
	return sendAll(io_, bytes, [this](std::chrono::milliseconds stalled) {
		return stalled < (stopRequested_ ? kStopGrace : server_.options().sendTimeout);
	});
}

Result<void> Session::run()
{
	reader_.setDeadline(std::chrono::steady_clock::now() + server_.options().handshakeTimeout);
	auto go = handshake();
	if (!go)
		return unexpected(go.error());
	if (!*go)
		return {};
	reader_.setDeadline(std::nullopt);
	return transmission();
}

Result<void> Session::runTransmission(const Export &exp)
{
	export_ = &exp;
	return transmission();
}

} // namespace r3d::nbd
