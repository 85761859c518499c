#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

#include "transport/tls_config.hpp"

namespace r3d::transport {

class RpcSession;

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
	uint32_t maxPayload = 32 * 1024 * 1024;
	/// Requests one connection may have in flight, and the bytes they may hold, before the
	/// server stops reading from it.
	unsigned maxInFlight = 256;
	uint64_t maxInFlightBytes = 128ull * 1024 * 1024;
	/// Connections at once; more are closed at accept, so memory stays bounded.
	unsigned maxConnections = 512;
	/// Threads that call backends which may block (ReadWriterAt::isFast() false).
	unsigned workerThreads = 16;
	/// Bound on TLS handshake plus hello, so a silent client cannot hold a connection.
	std::chrono::milliseconds handshakeTimeout{ 10000 };
};

struct RpcServerStats {
	uint64_t connections = 0;
	uint64_t activeConnections = 0;
	uint64_t refused = 0; ///< connections closed before or at the hello (TLS, token, framing)
	uint64_t requests = 0;
	uint64_t errors = 0; ///< requests answered with an errno
	uint64_t bytesRead = 0;
	uint64_t bytesWritten = 0;
};

/// Serves backends over the r3 transport (frame.hpp, proto/r3/v1/rpc.proto): one network
/// thread runs every connection as coroutines, a worker pool calls the backends. Each
/// request is checked (checkRequest) before anything is allocated or called for it; a bad
/// request gets an errno, a peer that breaks the framing loses its connection, and the
/// server goes on serving everyone else.
class RpcServer
{
public:
	/// Loads TLS material and the token file; fails naming what is wrong.
	static ResultMsg<std::unique_ptr<RpcServer>> create(RpcServerOptions options);
	~RpcServer();
	RpcServer(const RpcServer &) = delete;
	RpcServer &operator=(const RpcServer &) = delete;

	/// Call before start().
	void addExport(RpcExport exp);
	/// Binds "HOST:PORT" ("[::1]:PORT", port 0 picks one); returns the bound address.
	ResultMsg<std::string> listen(const std::string &hostPort);
	/// Starts the network thread and the workers.
	void start();
	/// Closes listeners and connections, lets requests in flight finish. Idempotent.
	void stop();

	RpcServerStats stats() const;

private:
	friend class RpcSession;
	struct Impl;
	explicit RpcServer(std::unique_ptr<Impl> impl);
	std::unique_ptr<Impl> impl_;
};

} // namespace r3d::transport
