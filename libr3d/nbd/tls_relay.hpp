#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace boost::asio::ssl {
class context;
}

namespace r3d::nbd {

/// TLS under code that speaks to a plain socket (the NBD session, whose reader and writer
/// threads would otherwise have to share one OpenSSL object): after the handshake on the
/// network socket, a thread of its own moves bytes between it and one end of a
/// socketpair, whose other end plainFd() the caller reads and writes in clear.
///
/// EOF travels both ways: the peer's end of TLS (or a shutdown of the network socket)
/// becomes EOF on the plain end; the caller closing its plain end sends close_notify and
/// ends the relay. Destroy the relay after closing the plain end.
class TlsRelay
{
public:
	/// The server side of the handshake on a duplicate of `socket` (which stays the
	/// caller's, e.g. to shut it down), bounded by `timeout`. The error message says why
	/// the handshake failed, in OpenSSL's words and the certificate verdict.
	static ResultMsg<std::unique_ptr<TlsRelay>> accept(int socket, std::shared_ptr<boost::asio::ssl::context> ctx,
							   std::chrono::milliseconds timeout);
	~TlsRelay();
	TlsRelay(const TlsRelay &) = delete;
	TlsRelay &operator=(const TlsRelay &) = delete;

	/// The caller's end of the relay (clear text); taken once.
	UniqueFd takePlain();
	/// "TLSv1.3", "TLSv1.2"; what the handshake agreed.
	const std::string &version() const { return version_; }

private:
	struct Pump;
	explicit TlsRelay(std::unique_ptr<Pump> pump);

	std::unique_ptr<Pump> pump_;
	std::string version_;
};

} // namespace r3d::nbd
