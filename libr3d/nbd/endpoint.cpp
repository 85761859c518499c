#include "nbd/endpoint.hpp"

namespace r3d::nbd {

ResultMsg<std::unique_ptr<Endpoint>> Endpoint::listen(std::unique_ptr<Server> server, const std::string &where)
{
	auto listener = Listener::listenAt(*server, where);
	if (!listener)
		return unexpectedOf(listener.error());
	return std::make_unique<Endpoint>(std::move(server), std::move(*listener));
}

Endpoint::Endpoint(std::unique_ptr<Server> server, std::unique_ptr<Listener> listener)
	: server_(std::move(server)), listener_(std::move(listener))
{
	acceptor_ = std::thread([listener = listener_.get()] { listener->run(); });
}

Endpoint::~Endpoint()
{
	stop();
}

void Endpoint::stop()
{
	// Connections first: the listener waits for their threads.
	server_->shutdown();
	listener_->stop();
	if (acceptor_.joinable())
		acceptor_.join();
}

} // namespace r3d::nbd
