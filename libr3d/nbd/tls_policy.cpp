#include "nbd/tls_policy.hpp"

#include <r3d/log.hpp>

namespace r3d::nbd {

namespace {

// A Listener's numeric address: "127.0.0.1:N", "[::1]:N", "[::ffff:127.0.0.1]:N".
bool isLoopbackAddress(const std::string &address)
{
	return address.starts_with("127.") || address.starts_with("[::1]:") || address.starts_with("[::ffff:127.");
}

bool isTcpAddress(const std::string &address)
{
	return !address.empty() && !address.starts_with("/") && address.find(':') != std::string::npos;
}

} // namespace

std::optional<TlsPolicy> parseTlsPolicy(std::string_view text)
{
	if (text == "off")
		return TlsPolicy::Off;
	if (text == "on")
		return TlsPolicy::On;
	if (text == "require")
		return TlsPolicy::Require;
	return std::nullopt;
}

const char *tlsPolicyName(TlsPolicy policy)
{
	switch (policy) {
	case TlsPolicy::Off:
		return "off";
	case TlsPolicy::On:
		return "on";
	case TlsPolicy::Require:
		return "require";
	}
	return "?";
}

void warnIfServedInClear(const std::string &address, TlsPolicy policy, const std::string &howToFix)
{
	if (policy == TlsPolicy::Require || !isTcpAddress(address) || isLoopbackAddress(address))
		return;
	if (policy == TlsPolicy::Off)
		log::get("nbd")->warn("NBD on {} without TLS: anyone who reaches this address can read and write the "
				      "exports, in clear; {}",
				      address, howToFix);
	else
		log::get("nbd")->warn("NBD on {} with optional TLS: clients without TLS are served in clear; {}",
				      address, howToFix);
}

} // namespace r3d::nbd
