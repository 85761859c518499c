#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/counters.hpp"

namespace r3mapd {

/// A region being served to clients over one wire protocol, whatever it is: the daemon's
/// exports hold this, not an NBD server (NbdExport) or an RPC server (R3Export).
class ServedExport
{
public:
	virtual ~ServedExport() = default;

	/// "nbd" or "r3": the Export1.Protocol value.
	virtual const char *protocol() const = 0;
	/// The bound address, with the port chosen for port 0 ("127.0.0.1:40123"), or a path.
	virtual std::string address() const = 0;
	virtual uint64_t activeConnections() const = 0;
	virtual r3d::Counters counters() const = 0;
	/// Stops listening and ends every connection after its requests in flight; blocks;
	/// idempotent.
	virtual void stop() = 0;
};

} // namespace r3mapd
