#include "r3_security.hpp"

#include <fmt/format.h>

#include "base/host_port.hpp"
#include "errors.hpp"

namespace r3mapd {

namespace {

bool isLoopbackHost(const std::string &host)
{
	return host == "localhost" || host == "::1" || host.starts_with("127.");
}

} // namespace

r3d::ResultMsg<void> R3Security::apply(uid_t caller, const std::string &listen, const char *what,
				       r3d::transport::RpcServerOptions &options) const
{
	if (any() && caller != 0)
		return fail(Errc::NotPermitted,
			    fmt::format("uid {} may not use tls_cert, tls_key, tls_ca or token_file: r3mapd runs as root "
					"and would read those files for it",
					caller));
	if (tlsCert.empty() != tlsKey.empty())
		return fail(Errc::InvalidArgument, "tls_cert and tls_key go together");
	if (!tlsCa.empty() && tlsCert.empty())
		return fail(Errc::InvalidArgument, "tls_ca (client certificates) needs tls_cert and tls_key");
	auto hostPort = r3d::parseHostPort(listen, "0");
	if (!hostPort)
		return fail(Errc::InvalidArgument, fmt::format("listen '{}': {}", listen, hostPort.error().message));
	if (tlsCert.empty() && !isLoopbackHost(hostPort->host))
		return fail(Errc::InvalidArgument,
			    fmt::format("listen '{}': {} listens in plaintext on a loopback address only (127.0.0.1, "
					"[::1], localhost); give tls_cert and tls_key for another one",
					listen, what));
	options.tls.certFile = tlsCert;
	options.tls.keyFile = tlsKey;
	options.tls.caFile = tlsCa;
	options.tokenFile = tokenFile;
	return {};
}

} // namespace r3mapd
