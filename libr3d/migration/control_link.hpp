#pragma once

// The leecher's connection to the seeder's "migration" service, as blocking calls for the
// leecher's driver thread: connect (TCP, TLS, the transport hello naming the service, the
// token), send one message, receive one with a timeout. The I/O runs as coroutines on a
// strand of the Runtime; a timeout or close() aborts the connection (the driver then
// reconnects). Not for the Runtime's own threads.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <r3d/result.hpp>

#include "migration/wire.hpp"
#include "transport/channel.hpp"
#include "transport/tls_config.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::migration {

struct ControlLinkOptions {
	std::string host;
	std::string port;
	std::string migrationId; ///< the transport hello's export name
	transport::TlsClientConfig tls;
	std::string token;
	std::string clientName = "r3map-leecher";
	std::chrono::milliseconds connectTimeout{ 10000 };
};

class ControlLink
{
public:
	/// Loads the TLS material; fails naming the file.
	static ResultMsg<std::unique_ptr<ControlLink>> create(Runtime &runtime, ControlLinkOptions options);
	~ControlLink();
	ControlLink(const ControlLink &) = delete;
	ControlLink &operator=(const ControlLink &) = delete;

	/// (Re)connects; the old connection, if any, is dropped first.
	ResultMsg<void> connect();
	ResultMsg<void> send(MessageType type, const std::string &body);
	ResultMsg<WireMessage> receive(std::chrono::milliseconds timeout);
	/// Drops the connection; a call blocked in receive() returns ECONNABORTED. Any thread.
	void close();
	bool connected() const;

private:
	ControlLink(Runtime &runtime, ControlLinkOptions options);
	transport::asio::awaitable<ResultMsg<void>> doConnect();
	transport::asio::awaitable<ResultMsg<WireMessage>> doReceive(std::chrono::milliseconds timeout);
	transport::asio::awaitable<ResultMsg<void>> doSend(std::string frame);

	Runtime &runtime_;
	ControlLinkOptions options_;
	transport::Strand strand_;
	std::shared_ptr<transport::asio::ssl::context> tls_;
	std::unique_ptr<transport::Channel> channel_; ///< strand only
	std::atomic<bool> connected_{ false };
};

} // namespace r3d::migration
