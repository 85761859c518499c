#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "base/counters.hpp"
#include "base/limits.hpp"
#include "transport/block/messages.hpp"
#include "transport/tls_config.hpp"

namespace r3d {

class Runtime;

namespace transport {

class ChannelService;

/// A backend offered to remote clients under a name.
struct RpcExport {
	std::string name; ///< clients asking for "" get the first export
	std::shared_ptr<ReadWriterAt> backend;
	/// 0: clients may read and write any byte range up to maxPayload; otherwise every
	/// range must be one aligned chunk (enforced by a ChunkedReadWriterAt guard).
	uint64_t chunkSize = 0;
	bool readOnly = false;
};

struct RpcServerOptions {
	TlsServerConfig tls;   ///< certFile set: TLS 1.3 required; caFile set: mutual TLS
	std::string tokenFile; ///< set: clients must present this shared secret
	uint32_t maxPayload = limits::kDefaultMaxPayload;
	/// Requests one connection may have in flight, and the bytes they may hold, before the
	/// server stops reading from it.
	unsigned maxInFlight = 256;
	uint64_t maxInFlightBytes = 64ull * 1024 * 1024;
	/// Bytes requests in flight may hold over all connections together (payloads received,
	/// read data not yet sent); a connection that cannot reserve its next request waits.
	uint64_t maxTotalInFlightBytes = 256ull * 1024 * 1024;
	/// A connection whose replies make no progress for this long (its client stopped
	/// reading) is dropped, and what it held goes back to the others.
	std::chrono::milliseconds writeTimeout{ 30000 };
	/// Connections at once; more are closed at accept, so memory stays bounded.
	unsigned maxConnections = 512;
	/// Connections still in their TLS handshake or hello; more are closed at accept, so
	/// silent clients cannot crowd out the rest.
	unsigned maxPendingHellos = 64;
	/// Bound on TLS handshake plus hello, so a silent client cannot hold a connection.
	std::chrono::milliseconds handshakeTimeout{ 10000 };
};

struct RpcServerStats {
	uint64_t connections = 0;
	uint64_t activeConnections = 0;
	uint64_t refused = 0; ///< connections closed before or at the hello (TLS, token, framing, caps)
	uint64_t requests = 0;
	uint64_t errors = 0; ///< requests answered with an errno
	uint64_t bytesRead = 0;
	uint64_t bytesWritten = 0;
	uint64_t fenced = 0;        ///< connections a reconnect of their client's slot closed or waited for
	uint64_t writeTimeouts = 0; ///< connections dropped after writeTimeout without progress
};

/// Every counter of `s` by name, for D-Bus, --json and logs.
Counters counterList(const RpcServerStats &s);

/// Serves backends as the "block" service of the r3 transport (frame.hpp,
/// proto/r3/v1/rpc.proto). Every connection runs as coroutines on one strand of the
/// Runtime's io_context; backends that may block (ReadWriterAt::isFast() false) are called
/// on the Runtime's blocking pool. Each request is checked (checkRequest) before anything
/// is allocated or called for it; a bad request gets an errno, a peer that breaks the
/// framing loses its connection, and the server goes on serving everyone else.
///
/// Fencing (fencing.hpp): a hello for (session S, slot k, incarnation n) closes the
/// connections (S, k, m < n) at once with a reset, dropping what they have not read; their
/// queued backend calls are answered ECANCELED without running; and the reply to the hello
/// waits until their running backend calls have returned. A request the client sends again
/// on the new connection therefore runs after every copy of it sent before, and no old copy
/// can land after the new one is answered. Any closed connection likewise drops its queued,
/// not yet running, backend calls.
class RpcServer
{
public:
	/// Loads TLS material and the token file; fails naming what is wrong. The server runs
	/// on `runtime`, which must outlive it.
	static ResultMsg<std::unique_ptr<RpcServer>> create(Runtime &runtime, RpcServerOptions options);
	~RpcServer();
	RpcServer(const RpcServer &) = delete;
	RpcServer &operator=(const RpcServer &) = delete;

	/// Call before start().
	void addExport(RpcExport exp);
	/// A service besides "block" that takes its connections over after the hello and the
	/// token check (channel_service.hpp), e.g. "migration". Call before start().
	void addService(std::string name,
			std::function<ResultMsg<std::shared_ptr<ChannelService>>(const Hello &hello)> factory);
	/// Binds "HOST:PORT" ("[::1]:PORT", port 0 picks one); returns the bound address.
	ResultMsg<std::string> listen(const std::string &hostPort);
	/// Starts accepting.
	void start();
	/// Closes listeners and connections; backend calls already running finish, queued ones
	/// are dropped (their clients send them again elsewhere). Returns when nothing of the
	/// server runs on the Runtime any more. Idempotent; not from the Runtime's threads.
	void stop();

	RpcServerStats stats() const;

private:
	struct Impl;
	explicit RpcServer(std::unique_ptr<Impl> impl);
	std::unique_ptr<Impl> impl_;
};

} // namespace transport
} // namespace r3d
