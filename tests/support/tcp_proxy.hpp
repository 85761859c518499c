#pragma once

// A TCP proxy on 127.0.0.1 for tests that need a link the real parts cannot give on
// demand: a slow one (a byte rate per direction), one that holds what a client sent
// and delivers it late (bytes still travelling when the client gave up on them), or one
// that is cut or down for a while.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <r3d/unique_fd.hpp>

#include "net_support.hpp"

namespace r3test {

class TcpProxy
{
public:
	/// Forwards 127.0.0.1:<its port> to 127.0.0.1:`targetPort`.
	explicit TcpProxy(const std::string &targetPort) : target_(static_cast<uint16_t>(std::stoi(targetPort)))
	{
		listener_ = r3d::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
		int one = 1;
		::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		smallBuffers(listener_.get()); // inherited by accepted sockets
		sockaddr_in addr = loopback(0);
		REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0);
		REQUIRE(::listen(listener_.get(), 64) == 0);
		socklen_t len = sizeof(addr);
		::getsockname(listener_.get(), reinterpret_cast<sockaddr *>(&addr), &len);
		port_ = std::to_string(ntohs(addr.sin_port));
		acceptor_ = std::thread([this] { acceptLoop(); });
	}

	~TcpProxy()
	{
		stopping_ = true;
		::shutdown(listener_.get(), SHUT_RDWR);
		acceptor_.join();
		{
			std::lock_guard lock(mutex_);
			for (auto &l : links_) {
				l->held = false;
				::shutdown(l->client.get(), SHUT_RDWR);
				::shutdown(l->server.get(), SHUT_RDWR);
			}
			changed_.notify_all();
		}
		for (auto &l : links_)
			for (auto &t : l->pumps)
				t.join();
	}

	const std::string &port() const { return port_; }

	/// Bytes per second each direction of each connection may carry; 0: as fast as it goes.
	void setRate(uint64_t bytesPerSecond) { rate_ = bytesPerSecond; }

	/// Connections accepted so far.
	size_t connections()
	{
		std::lock_guard lock(mutex_);
		return links_.size();
	}

	/// From now on, what the client of connection `index` (in accept order) sends is kept
	/// here instead of forwarded, even after that client has gone.
	void hold(size_t index)
	{
		std::lock_guard lock(mutex_);
		link(index).held = true;
	}

	/// Waits until `n` connections have been accepted.
	void waitConnections(size_t n)
	{
		std::unique_lock lock(mutex_);
		changed_.wait(lock, [&] { return links_.size() >= n; });
	}

	/// Delivers what connection `index` held, then forwards as usual (or closes towards the
	/// server when its client has gone meanwhile). Returns how many bytes were held.
	size_t release(size_t index)
	{
		std::unique_lock lock(mutex_);
		Link &l = link(index);
		size_t total = 0;
		// Still held while flushing, so what arrives meanwhile queues behind it.
		while (!l.kept.empty()) {
			std::string late = std::move(l.kept);
			l.kept.clear();
			lock.unlock();
			sendAll(l.server.get(), late.data(), late.size());
			total += late.size();
			lock.lock();
		}
		l.held = false;
		changed_.notify_all();
		return total;
	}

	/// Cuts every connection now (both ends see it end), as a link failure would.
	void cut()
	{
		std::lock_guard lock(mutex_);
		for (auto &l : links_) {
			::shutdown(l->client.get(), SHUT_RDWR);
			::shutdown(l->server.get(), SHUT_RDWR);
		}
	}

	/// While down, new connections are closed at once and `cut()` runs: an outage.
	void setDown(bool down)
	{
		down_ = down;
		if (down)
			cut();
	}

private:
	struct Link {
		r3d::UniqueFd client;
		r3d::UniqueFd server;
		bool held = false;
		std::string kept; ///< client bytes held back
		std::vector<std::thread> pumps;
	};

	// Small socket buffers, so a rate limit here is felt by the sender at once.
	static void smallBuffers(int fd)
	{
		int size = 64 * 1024;
		::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}

	Link &link(size_t index)
	{
		REQUIRE(index < links_.size());
		auto it = links_.begin();
		std::advance(it, index);
		return **it;
	}

	void acceptLoop()
	{
		for (;;) {
			r3d::UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
			if (!client || stopping_)
				return;
			if (down_)
				continue; // the client sees its connection closed

			r3d::UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
			smallBuffers(server.get());
			sockaddr_in addr = loopback(target_);
			if (::connect(server.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0)
				continue; // the client sees its connection closed
			int one = 1;
			::setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			std::lock_guard lock(mutex_);
			auto &l = *links_.emplace_back(std::make_unique<Link>());
			l.client = std::move(client);
			l.server = std::move(server);
			l.pumps.emplace_back([this, &l] { pump(l, true); });
			l.pumps.emplace_back([this, &l] { pump(l, false); });
			changed_.notify_all();
		}
	}

	static bool sendAll(int fd, const char *data, size_t n)
	{
		while (n > 0) {
			ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
			if (w <= 0)
				return false;
			data += w;
			n -= static_cast<size_t>(w);
		}
		return true;
	}

	// Moves bytes one way until either side ends; `up`: client to server.
	void pump(Link &l, bool up)
	{
		int from = up ? l.client.get() : l.server.get();
		int to = up ? l.server.get() : l.client.get();
		std::vector<char> buf(16 * 1024);
		for (;;) {
			uint64_t rate = rate_;
			size_t want = rate ? std::min<size_t>(buf.size(), std::max<uint64_t>(1, rate / 100)) : buf.size();
			ssize_t n = ::recv(from, buf.data(), want, 0);
			if (up) {
				std::unique_lock lock(mutex_);
				if (l.held && n > 0) {
					l.kept.append(buf.data(), static_cast<size_t>(n));
					continue;
				}
				// Held and the client is gone: what it sent is delivered at release.
				changed_.wait(lock, [&] { return !l.held || stopping_; });
			}
			if (n <= 0 || !sendAll(to, buf.data(), static_cast<size_t>(n)))
				break;
			if (rate)
				std::this_thread::sleep_for(std::chrono::microseconds(static_cast<uint64_t>(n) * 1000000 / rate));
		}
		::shutdown(to, SHUT_WR);
	}

	uint16_t target_;
	std::string port_;
	r3d::UniqueFd listener_;
	std::thread acceptor_;
	std::atomic<bool> stopping_{ false };
	std::atomic<uint64_t> rate_{ 0 };
	std::atomic<bool> down_{ false };
	std::mutex mutex_;
	std::condition_variable changed_;
	std::list<std::unique_ptr<Link>> links_;
};

} // namespace r3test
