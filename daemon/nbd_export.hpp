#pragma once

#include <memory>
#include <thread>

#include "nbd/listener.hpp"
#include "nbd/server.hpp"
#include "served_export.hpp"

namespace r3mapd {

/// A backend served over NBD (fixed newstyle) on TCP or a UNIX socket, accepting on a
/// thread of its own.
class NbdExport final : public ServedExport
{
public:
	NbdExport(std::unique_ptr<r3d::nbd::Server> server, std::unique_ptr<r3d::nbd::Listener> listener);
	~NbdExport() override;

	const char *protocol() const override { return "nbd"; }
	std::string address() const override { return listener_->address(); }
	uint64_t activeConnections() const override { return server_->stats().activeConnections; }
	r3d::Counters counters() const override;
	void stop() override;

private:
	std::unique_ptr<r3d::nbd::Server> server_;
	std::unique_ptr<r3d::nbd::Listener> listener_;
	std::thread acceptor_;
};

} // namespace r3mapd
