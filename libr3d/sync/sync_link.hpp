#pragma once

// A sender's connection to a receiver's "sync" service, as blocking calls for the sender's
// thread: connect (transport/service_connect.hpp: TCP, TLS, the hello with the token), send
// prepared frames, receive one frame with its payload under a timeout. The I/O runs as
// coroutines on a strand of the Runtime; a timeout or close() aborts the connection. Not
// for the Runtime's own threads.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "sync/sync_messages.hpp"
#include "transport/channel.hpp"
#include "transport/tls_config.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::sync {

struct SyncLinkOptions {
	std::string host;
	std::string port;
	std::string name; ///< the copy's name (the transport hello's export name)
	transport::TlsClientConfig tls;
	std::string token;
	std::string clientName = "r3sync";
	std::chrono::milliseconds connectTimeout{ 10000 };
	/// Offer zstd for chunk payloads; a receiver that takes it gets each chunk that
	/// shrinks compressed (level 1), the others raw.
	bool compress = false;
};

struct ReceivedFrame {
	SyncMessage message;
	std::vector<std::byte> payload;
};

class SyncLink
{
public:
	static ResultMsg<std::unique_ptr<SyncLink>> create(Runtime &runtime, SyncLinkOptions options);
	~SyncLink();
	SyncLink(const SyncLink &) = delete;
	SyncLink &operator=(const SyncLink &) = delete;

	ResultMsg<void> connect();
	/// Whole frames (appendSyncFrame, payloads included).
	ResultMsg<void> send(std::string frames);
	ResultMsg<ReceivedFrame> receive(std::chrono::milliseconds timeout);
	/// Drops the connection. Any thread.
	void close();
	bool connected() const { return connected_; }

private:
	SyncLink(Runtime &runtime, SyncLinkOptions options);
	transport::asio::awaitable<ResultMsg<void>> doConnect();
	transport::asio::awaitable<ResultMsg<void>> doSend(std::string frames);
	transport::asio::awaitable<ResultMsg<ReceivedFrame>> doReceive(std::chrono::milliseconds timeout);

	SyncLinkOptions options_;
	transport::Strand strand_;
	std::shared_ptr<transport::asio::ssl::context> tls_;
	std::unique_ptr<transport::Channel> channel_; ///< strand only
	std::atomic<bool> connected_{ false };
};

} // namespace r3d::sync
