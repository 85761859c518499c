#include "base/host_port.hpp"

#include <fmt/format.h>

namespace r3d {

ResultMsg<HostPort> parseHostPort(const std::string &text, const std::string &defaultPort)
{
	HostPort hp;
	std::string rest;
	if (text.starts_with("[")) {
		size_t close = text.find(']');
		if (close == std::string::npos)
			return fail(EINVAL, fmt::format("'{}': expected [IPV6]:PORT", text));
		hp.host = text.substr(1, close - 1);
		rest = text.substr(close + 1);
	} else {
		size_t colon = text.find(':');
		if (colon != std::string::npos && text.find(':', colon + 1) != std::string::npos)
			return fail(EINVAL, fmt::format("'{}': write an IPv6 address in brackets, [ADDRESS]:PORT", text));
		hp.host = text.substr(0, colon);
		rest = colon == std::string::npos ? "" : text.substr(colon);
	}
	if (rest.empty() && !defaultPort.empty()) {
		hp.port = defaultPort;
		return hp;
	}
	if (!rest.starts_with(":"))
		return fail(EINVAL, fmt::format("'{}': expected HOST:PORT", text));
	hp.port = rest.substr(1);
	if (hp.port.empty() || hp.port.size() > 5 || hp.port.find_first_not_of("0123456789") != std::string::npos ||
	    std::stoul(hp.port) > 65535)
		return fail(EINVAL, fmt::format("'{}': '{}' is not a port number", text, hp.port));
	return hp;
}

} // namespace r3d
