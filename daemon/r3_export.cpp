#include "r3_export.hpp"

namespace r3mapd {

R3Export::R3Export(std::unique_ptr<r3d::transport::RpcServer> server, std::string address)
	: server_(std::move(server)), address_(std::move(address))
{
	server_->start();
}

R3Export::~R3Export()
{
	stop();
}

r3d::Counters R3Export::counters() const
{
	return r3d::transport::counterList(server_->stats());
}

void R3Export::stop()
{
	if (stopped_)
		return;
	stopped_ = true;
	server_->stop();
}

} // namespace r3mapd
