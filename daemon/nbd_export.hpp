#pragma once

#include <memory>
#include <string>

#include "nbd/endpoint.hpp"
#include "served_export.hpp"

namespace r3mapd {

/// A backend served over NBD (fixed newstyle) on TCP or a UNIX socket, accepting on a
/// thread of its own.
class NbdExport final : public ServedExport
{
public:
	/// Listens on `address` (HOST:PORT, unix:PATH or an absolute path); errors as failListen.
	static r3d::ResultMsg<std::unique_ptr<NbdExport>> listen(std::unique_ptr<r3d::nbd::Server> server,
								  const std::string &address);
	explicit NbdExport(std::unique_ptr<r3d::nbd::Endpoint> endpoint);
	~NbdExport() override;

	const char *protocol() const override { return "nbd"; }
	std::string address() const override { return endpoint_->address(); }
	uint64_t activeConnections() const override;
	r3d::Counters counters() const override;
	void stop() override;

private:
	std::unique_ptr<r3d::nbd::Endpoint> endpoint_;
};

} // namespace r3mapd
