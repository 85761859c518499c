#include "transport/client_security.hpp"

#include <fmt/format.h>

#include "transport/token.hpp"

namespace r3d::transport {

namespace {

const char *const kFileParams[] = { "tls-ca", "tls-cert", "tls-key", "token-file" };

std::string param(const BackendUri &u, const char *key)
{
	auto it = u.params.find(key);
	return it == u.params.end() ? std::string() : it->second;
}

} // namespace

std::set<std::string> ClientSecurity::params(std::set<std::string> more)
{
	more.insert({ "tls", "tls-name" });
	for (const char *p : kFileParams)
		more.insert(p);
	return more;
}

ResultMsg<ClientSecurity> ClientSecurity::of(const BackendUri &u)
{
	ClientSecurity s;
	s.tls.caFile = param(u, "tls-ca");
	s.tls.certFile = param(u, "tls-cert");
	s.tls.keyFile = param(u, "tls-key");
	s.tls.serverName = param(u, "tls-name");
	std::string tls = param(u, "tls");
	if (!tls.empty() && tls != "on" && tls != "off")
		return fail(EINVAL, fmt::format("'{}': tls={}: expected on or off", u.text, tls));
	s.tls.mode = tls == "on" ? TlsMode::On : tls == "off" ? TlsMode::Off : TlsMode::Auto;
	if (tls == "off" && (!s.tls.caFile.empty() || !s.tls.certFile.empty()))
		return fail(EINVAL, fmt::format("'{}': tls=off contradicts the tls-* parameters", u.text));
	if (auto file = param(u, "token-file"); !file.empty()) {
		auto token = readTokenFile(file);
		if (!token)
			return fail(token.error().code, fmt::format("'{}': {}", u.text, token.error().message));
		s.token = *token;
	}
	return s;
}

bool ClientSecurity::namesFiles(const BackendUri &u)
{
	for (const char *p : kFileParams)
		if (u.params.count(p))
			return true;
	return false;
}

} // namespace r3d::transport
