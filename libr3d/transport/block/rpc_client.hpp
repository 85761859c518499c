#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <r3d/result.hpp>

#include "base/limits.hpp"
#include "transport/block/messages.hpp"
#include "transport/tls_config.hpp"

namespace r3d {

class Runtime;

namespace transport {

struct RpcClientOptions {
	std::string host;
	std::string port;
	std::string exportName;
	TlsClientConfig tls;
	std::string token; ///< shared secret, when the server asks for one
	std::string clientName = "r3map";
	/// TCP connections to spread requests over.
	unsigned connections = 1;
	/// Requests in flight per connection (the server may allow fewer).
	unsigned maxInFlight = 256;
	/// Largest payload of one request; larger calls are split (the server may allow less).
	uint32_t maxPayload = limits::kDefaultMaxPayload;
	std::chrono::milliseconds connectTimeout{ 10000 };
	/// A connection with requests in flight that makes no progress for this long is dropped;
	/// its requests are re-sent on a new one.
	std::chrono::milliseconds requestTimeout{ 30000 };
	/// A call that has not completed this long after it was made fails with EIO, however
	/// many reconnects it has waited for.
	std::chrono::milliseconds deadline{ 60000 };
	std::chrono::milliseconds backoffInitial{ 100 };
	std::chrono::milliseconds backoffMax{ 2000 };
};

/// What the server told about its export at the hello.
struct RemoteExportInfo {
	uint64_t size = 0;
	uint64_t chunkSize = 0;
	uint32_t maxPayload = 0;
	uint32_t maxInFlight = 0;
	bool readOnly = false;
};

struct RpcClientStats {
	uint64_t reconnects = 0;
	uint64_t resent = 0;  ///< requests sent again after a connection was lost
	uint64_t expired = 0; ///< calls failed with EIO at their deadline
	std::string lastError; ///< why the last connection attempt failed; empty after a success
};

/// Client of the r3 transport's block service. Blocking calls from any number of threads
/// are multiplexed over a few connections, run as coroutines on a strand of the Runtime's
/// io_context; replies complete in any order. A lost connection is re-established with
/// backoff and the requests it carried are sent again (reads and writes at fixed offsets
/// are idempotent), so a link cut stalls callers and then resumes; only a call older than
/// `deadline` fails, with EIO.
///
/// Ordering: once a write, trim or zeroing has been answered (or has failed), no older
/// copy of it or of any earlier call can still change the export. Each connection is a
/// slot with an incarnation counter, named in its hello together with a random session
/// id; the server fences a slot's older connections before answering the hello of a new
/// one (rpc_server.hpp). Writes a lost connection carried are sent again only on the same
/// slot's next connection; a connection is reset (not closed gracefully) when it times
/// out, when one of its writes passes its deadline and when the client stops, so unsent
/// bytes never leave; and while a write failed at its deadline may still run on the
/// server, no new write goes out on any connection until that slot's fence is done.
class RpcClient
{
public:
	/// Connects the first connection and does the hello; fails with a message saying why
	/// (unreachable, TLS verification, refused token, no such export). The client runs on
	/// `runtime`, which must outlive it; it must not be called or destroyed on the
	/// Runtime's io threads (its calls block).
	static ResultMsg<std::unique_ptr<RpcClient>> connect(Runtime &runtime, RpcClientOptions options);
	~RpcClient();
	RpcClient(const RpcClient &) = delete;
	RpcClient &operator=(const RpcClient &) = delete;

	const RemoteExportInfo &info() const;

	Result<void> read(std::span<std::byte> buf, uint64_t offset);
	/// Several ranges in one round trip; `out` receives them back to back and must be as
	/// long as their sum.
	Result<void> readRanges(std::span<const IoRange> ranges, std::span<std::byte> out);
	Result<void> write(std::span<const std::byte> buf, uint64_t offset);
	Result<void> trim(uint64_t offset, uint64_t length);
	Result<void> writeZeroes(uint64_t offset, uint64_t length);
	Result<void> sync();
	Result<uint64_t> remoteSize();

	RpcClientStats stats() const;

private:
	struct Impl;
	explicit RpcClient(std::unique_ptr<Impl> impl);
	std::unique_ptr<Impl> impl_;
};

} // namespace transport
} // namespace r3d
