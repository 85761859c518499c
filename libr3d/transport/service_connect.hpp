#pragma once

// The client side of a ChannelService (channel_service.hpp): resolve, connect, TLS, the
// transport hello naming the service and carrying the token, and its reply. Used by the
// migration leecher's ControlLink and the sync sender's SyncLink; what follows the hello is
// the service's own exchange.

#include <chrono>
#include <memory>
#include <string>
#include <utility> // before Asio 1.18, whose awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <r3d/result.hpp>

#include "transport/channel.hpp"
#include "transport/tls_config.hpp"

namespace r3d::transport {

struct ServiceConnectOptions {
	std::string host;
	std::string port;
	std::string service;    ///< the transport hello's service
	std::string exportName; ///< the transport hello's export name
	std::string token;
	std::string clientName;
	std::string serverName; ///< TLS: the name checked against the certificate; default: host
	/// Who answers, for the refusal message ("the seeder").
	std::string peerRole = "the server";
	std::chrono::milliseconds connectTimeout{ 10000 };
};

/// Connects on `strand`; `tls` null for plain TCP. The whole of it is bounded by
/// connectTimeout (ETIMEDOUT).
asio::awaitable<ResultMsg<std::unique_ptr<Channel>>> connectService(Strand strand, const ServiceConnectOptions &options,
								   asio::ssl::context *tls);

} // namespace r3d::transport
