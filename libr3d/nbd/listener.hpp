#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::nbd {

class Server;

/// Accepts connections on a TCP address ("HOST:PORT", "[::1]:PORT") or a UNIX socket path
/// and serves each on its own thread with a Server.
class Listener
{
public:
	/// Binds and listens; fails with a message naming the address.
	static ResultMsg<std::unique_ptr<Listener>> listenTcp(Server &server, const std::string &hostPort);
	static ResultMsg<std::unique_ptr<Listener>> listenUnix(Server &server, const std::string &path);
	/// `where` is "unix:PATH", an absolute socket path, or a TCP address.
	static ResultMsg<std::unique_ptr<Listener>> listenAt(Server &server, const std::string &where);
	/// The socket path `where` names, if it names one.
	static std::optional<std::string> unixPathOf(const std::string &where);
	~Listener();

	/// Accepts until stop(); returns from another thread's stop().
	void run();
	/// Stops accepting and waits for the connection threads (call Server::shutdown() first
	/// to end live connections). Idempotent.
	void stop();
	/// "127.0.0.1:10809" or the socket path, with the port the kernel chose for port 0.
	const std::string &address() const { return address_; }

private:
	Listener(Server &server, UniqueFd fd, std::string address, std::string unlinkPath);

	Server &server_;
	UniqueFd fd_;
	UniqueFd wakeup_; ///< eventfd that interrupts accept on stop()
	std::string address_;
	std::string unlinkPath_;
	std::mutex mutex_;
	struct Connection {
		std::thread thread;
		std::shared_ptr<std::atomic<bool>> done;
	};
	std::list<Connection> connections_;
	bool stopped_ = false;
};

} // namespace r3d::nbd
