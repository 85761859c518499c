#pragma once

#include <memory>
#include <string>
#include <thread>

#include <r3d/result.hpp>

#include "nbd/listener.hpp"
#include "nbd/server.hpp"

namespace r3d::nbd {

/// A Server with one Listener accepting on a thread of its own: a backend served over NBD
/// until stop(). What r3mapd's exports and the tools hold.
class Endpoint
{
public:
	/// Listens on `where` ("unix:PATH", an absolute socket path, or HOST:PORT).
	static ResultMsg<std::unique_ptr<Endpoint>> listen(std::unique_ptr<Server> server, const std::string &where);
	Endpoint(std::unique_ptr<Server> server, std::unique_ptr<Listener> listener);
	~Endpoint();
	Endpoint(const Endpoint &) = delete;
	Endpoint &operator=(const Endpoint &) = delete;

	Server &server() const { return *server_; }
	/// The bound address, with the port the kernel chose for port 0, or the socket path.
	const std::string &address() const { return listener_->address(); }
	/// Ends the connections, then stops accepting. Idempotent.
	void stop();

private:
	std::unique_ptr<Server> server_;
	std::unique_ptr<Listener> listener_;
	std::thread acceptor_;
};

} // namespace r3d::nbd
