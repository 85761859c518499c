#pragma once

#include <string>
#include <sys/types.h>

#include <r3d/result.hpp>

#include "transport/block/rpc_server.hpp"

namespace r3mapd {

/// The TLS and token of an r3 server r3mapd runs for a caller (an r3 export, a migration
/// seeder), from its options tls_cert, tls_key, tls_ca and token_file.
struct R3Security {
	std::string tlsCert;
	std::string tlsKey;
	std::string tlsCa;     ///< clients must present a certificate signed by it
	std::string tokenFile; ///< clients must present its first line

	bool any() const { return !tlsCert.empty() || !tlsKey.empty() || !tlsCa.empty() || !tokenFile.empty(); }

	/// Checks and applies them for `caller` to a server that will listen on `listen`
	/// (HOST:PORT). The files are read by r3mapd as root, so only root may name them.
	/// Plaintext stays on loopback: another address needs tls_cert and tls_key.
	r3d::ResultMsg<void> apply(uid_t caller, const std::string &listen, const char *what,
				   r3d::transport::RpcServerOptions &options) const;
};

} // namespace r3mapd
