#pragma once

// Loopback sockets for tests that talk to servers they start.

#include <cstdint>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <r3d/unique_fd.hpp>

namespace r3test {

inline sockaddr_in loopback(uint16_t port)
{
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return addr;
}

/// A TCP connection to 127.0.0.1:`port`; invalid when nothing accepts there.
inline r3d::UniqueFd tryConnect(uint16_t port)
{
	r3d::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	sockaddr_in addr = loopback(port);
	if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0)
		fd.reset();
	return fd;
}

/// A port on 127.0.0.1 that nobody listens on right now.
inline uint16_t freePort()
{
	r3d::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	sockaddr_in addr = loopback(0);
	REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0);
	socklen_t len = sizeof(addr);
	::getsockname(fd.get(), reinterpret_cast<sockaddr *>(&addr), &len);
	return ntohs(addr.sin_port);
}

} // namespace r3test
