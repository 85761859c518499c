#pragma once

#include <string>

#include <r3d/result.hpp>

namespace r3d {

struct HostPort {
	std::string host;
	std::string port;
};

/// Splits "HOST:PORT" or "[V6]:PORT" (an empty HOST means every address); with
/// `defaultPort`, a bare "HOST" is accepted too. Fails naming the problem.
ResultMsg<HostPort> parseHostPort(const std::string &text, const std::string &defaultPort = "");

} // namespace r3d
