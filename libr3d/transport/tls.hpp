#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include <r3d/result.hpp>

#include "transport/channel.hpp"
#include "transport/tls_config.hpp"

namespace r3d::transport {

/// TLS 1.3 only (the server: unless config.allowTls12). A server uses a certificate, or
/// pre-shared keys (config.pskFile). Fails with a message naming the file that could not
/// be used.
ResultMsg<std::shared_ptr<asio::ssl::context>> makeServerTlsContext(const TlsServerConfig &config);
ResultMsg<std::shared_ptr<asio::ssl::context>> makeClientTlsContext(const TlsClientConfig &config);

/// Words for a failed handshake: OpenSSL's reason plus the certificate verdict when there
/// is one, e.g. "certificate verify failed (unable to get local issuer certificate)".
std::string describeTlsError(const ErrorCode &ec, SSL *ssl);

} // namespace r3d::transport
