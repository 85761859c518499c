#pragma once

#include <set>
#include <string>

#include <r3d/backend_uri.hpp>
#include <r3d/result.hpp>

#include "transport/tls_config.hpp"

namespace r3d::transport {

/// How a client secures its connection to an r3 server, from an r3:// URI's parameters:
/// tls=on|off, tls-ca, tls-cert, tls-key, tls-name and token-file. The remote backend,
/// r3migrate, r3mapd's migrations and r3sync read them here.
struct ClientSecurity {
	TlsClientConfig tls;
	std::string token;

	/// The parameter names, for BackendUri::onlyParams() with a user's own added.
	static std::set<std::string> params(std::set<std::string> more = {});
	/// Reads the token file; checks tls against the other parameters.
	static ResultMsg<ClientSecurity> of(const BackendUri &uri);
	/// Whether the URI names files to read (tls-ca, tls-cert, tls-key, token-file): a
	/// daemon running as root must not read them for an unprivileged caller.
	static bool namesFiles(const BackendUri &uri);
};

} // namespace r3d::transport
