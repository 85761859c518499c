#pragma once

#include <memory>
#include <string>

#include "served_export.hpp"
#include "transport/block/rpc_server.hpp"

namespace r3mapd {

/// A backend served over r3map's own transport (r3://HOST:PORT/NAME), what r3serve --r3
/// does, on the daemon's Runtime.
class R3Export final : public ServedExport
{
public:
	R3Export(std::unique_ptr<r3d::transport::RpcServer> server, std::string address);
	~R3Export() override;

	const char *protocol() const override { return "r3"; }
	std::string address() const override { return address_; }
	uint64_t activeConnections() const override { return server_->stats().activeConnections; }
	r3d::Counters counters() const override;
	void stop() override;

private:
	std::unique_ptr<r3d::transport::RpcServer> server_;
	std::string address_;
	bool stopped_ = false;
};

} // namespace r3mapd
