#include "nbd/listener.hpp"

#include <cstring>

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "nbd/server.hpp"

namespace r3d::nbd {

namespace {

std::string describe(const sockaddr *sa, socklen_t len)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (::getnameinfo(sa, len, host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return "?";
	return sa->sa_family == AF_INET6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

} // namespace

ResultMsg<std::unique_ptr<Listener>> Listener::listenTcp(Server &server, const std::string &hostPort)
{
	// "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses).
	std::string host, port;
	if (hostPort.starts_with('[')) {
		size_t close = hostPort.find(']');
		if (close == std::string::npos || close + 1 >= hostPort.size() || hostPort[close + 1] != ':')
			return fail(EINVAL, fmt::format("'{}': expected [ADDRESS]:PORT", hostPort));
		host = hostPort.substr(1, close - 1);
		port = hostPort.substr(close + 2);
	} else {
		size_t colon = hostPort.rfind(':');
		if (colon == std::string::npos)
			return fail(EINVAL, fmt::format("'{}': expected HOST:PORT", hostPort));
		host = hostPort.substr(0, colon);
		port = hostPort.substr(colon + 1);
	}
	if (port.empty())
		return fail(EINVAL, fmt::format("'{}': the port is missing", hostPort));

	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	addrinfo *res = nullptr;
	int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
	if (rc != 0)
		return fail(EINVAL, fmt::format("'{}': {}", hostPort, ::gai_strerror(rc)));
	std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);

	int lastError = EADDRNOTAVAIL;
	for (addrinfo *ai = res; ai; ai = ai->ai_next) {
		UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
		if (!fd) {
			lastError = errno;
			continue;
		}
		int one = 1;
		::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
			lastError = errno;
			continue;
		}
		sockaddr_storage bound{};
		socklen_t len = sizeof(bound);
		::getsockname(fd.get(), reinterpret_cast<sockaddr *>(&bound), &len);
		return std::unique_ptr<Listener>(
			new Listener(server, std::move(fd), describe(reinterpret_cast<sockaddr *>(&bound), len), {}));
	}
	return fail(lastError, fmt::format("cannot listen on {}: {}", hostPort, std::strerror(lastError)));
}

std::optional<std::string> Listener::unixPathOf(const std::string &where)
{
	if (where.starts_with("unix:"))
		return where.substr(5);
	if (where.starts_with("/"))
		return where;
	return std::nullopt;
}

ResultMsg<std::unique_ptr<Listener>> Listener::listenAt(Server &server, const std::string &where)
{
	if (where.empty())
		return fail(EINVAL, "the listen address is empty: give HOST:PORT or unix:PATH");
	if (auto path = unixPathOf(where))
		return listenUnix(server, *path);
	return listenTcp(server, where);
}

ResultMsg<std::unique_ptr<Listener>> Listener::listenUnix(Server &server, const std::string &path)
{
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof(addr.sun_path))
		return fail(ENAMETOOLONG, fmt::format("'{}': a UNIX socket path must be 1..{} bytes", path,
						      sizeof(addr.sun_path) - 1));
	std::memcpy(addr.sun_path, path.c_str(), path.size());
	UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!fd)
		return fail(errno, fmt::format("socket: {}", std::strerror(errno)));
	// A stale socket file from a crashed run would make bind fail; a live one must not be
	// stolen, and anything that is not a socket (say, a disk image named by mistake) must
	// never be removed.
	struct stat st {};
	if (::lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return fail(EEXIST, fmt::format("'{}' exists and is not a socket; not replacing it", path));
		UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
		if (::connect(probe.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0)
			return fail(EADDRINUSE, fmt::format("'{}' is in use by another server", path));
		if (errno == ECONNREFUSED)
			::unlink(path.c_str());
	}
	if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 || ::listen(fd.get(), 128) != 0) {
		int err = errno;
		return fail(err, fmt::format("cannot listen on '{}': {}", path, std::strerror(err)));
	}
	return std::unique_ptr<Listener>(new Listener(server, std::move(fd), path, path));
}

Listener::Listener(Server &server, UniqueFd fd, std::string address, std::string unlinkPath)
	: server_(server), fd_(std::move(fd)), wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
	  address_(std::move(address)), unlinkPath_(std::move(unlinkPath))
{
}

Listener::~Listener()
{
	stop();
	if (!unlinkPath_.empty())
		::unlink(unlinkPath_.c_str());
}

void Listener::run()
{
	auto logger = log::get("nbd");
	for (;;) {
		pollfd fds[2] = { { fd_.get(), POLLIN, 0 }, { wakeup_.get(), POLLIN, 0 } };
		if (::poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			logger->error("poll: {}", std::strerror(errno));
			return;
		}
		if (fds[1].revents)
			return;
		UniqueFd client(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
		if (!client) {
			if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
				logger->warn("accept on {}: {}", address_, std::strerror(errno));
			continue;
		}
		std::lock_guard lock(mutex_);
		if (stopped_)
			return;
		// Join finished connection threads so a long-lived listener does not accumulate them.
		connections_.remove_if([](Connection &c) {
			if (!c.done->load())
				return false;
			c.thread.join();
			return true;
		});
		if (connections_.size() >= server_.options().maxConnections) {
			logger->warn("{}: {} connections already; refusing another", address_, connections_.size());
			continue;
		}
		auto done = std::make_shared<std::atomic<bool>>(false);
		connections_.push_back(Connection{ std::thread([this, done, c = std::move(client)]() mutable {
							  auto r = server_.serve(std::move(c));
							  if (!r)
								  log::get("nbd")->debug("connection ended: {}",
											 r.error().message());
							  done->store(true);
						  }),
						  done });
	}
}

void Listener::stop()
{
	std::list<Connection> threads;
	{
		std::lock_guard lock(mutex_);
		if (stopped_)
			return;
		stopped_ = true;
		uint64_t one = 1;
		(void)!::write(wakeup_.get(), &one, sizeof(one));
		threads.swap(connections_);
	}
	for (auto &c : threads)
		c.thread.join();
}

} // namespace r3d::nbd
