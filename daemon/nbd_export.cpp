#include "nbd_export.hpp"

#include "errors.hpp"
#include "nbd/stats.hpp"

namespace r3mapd {

r3d::ResultMsg<std::unique_ptr<NbdExport>> NbdExport::listen(std::unique_ptr<r3d::nbd::Server> server,
							      const std::string &address)
{
	auto endpoint = r3d::nbd::Endpoint::listen(std::move(server), address);
	if (!endpoint)
		return failListen(std::move(endpoint.error()));
	return std::make_unique<NbdExport>(std::move(*endpoint));
}

NbdExport::NbdExport(std::unique_ptr<r3d::nbd::Endpoint> endpoint) : endpoint_(std::move(endpoint)) {}

NbdExport::~NbdExport()
{
	stop();
}

uint64_t NbdExport::activeConnections() const
{
	return endpoint_->server().stats().activeConnections;
}

r3d::Counters NbdExport::counters() const
{
	return r3d::nbd::counterList(endpoint_->server().stats());
}

void NbdExport::stop()
{
	endpoint_->stop();
}

} // namespace r3mapd
