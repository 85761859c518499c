#include "nbd_export.hpp"

#include "nbd/stats.hpp"

namespace r3mapd {

NbdExport::NbdExport(std::unique_ptr<r3d::nbd::Server> server, std::unique_ptr<r3d::nbd::Listener> listener)
	: server_(std::move(server)), listener_(std::move(listener))
{
	acceptor_ = std::thread([listener = listener_.get()] { listener->run(); });
}

NbdExport::~NbdExport()
{
	stop();
}

r3d::Counters NbdExport::counters() const
{
	return r3d::nbd::counterList(server_->stats());
}

void NbdExport::stop()
{
	// Connections first: the listener waits for their threads.
	server_->shutdown();
	listener_->stop();
	if (acceptor_.joinable())
		acceptor_.join();
}

} // namespace r3mapd
