#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "base/limits.hpp"
#include "nbd/meta_source.hpp"
#include "nbd/stats.hpp"
#include "nbd/tls_policy.hpp"

namespace boost::asio::ssl {
class context;
}

namespace r3d {
class Runtime;
class ThreadPool;
}

namespace r3d::nbd {

class MetaSource;

/// One export a server offers by name.
struct Export {
	std::string name; ///< "" is also reachable as the default export
	std::string description;
	std::shared_ptr<ReadWriterAt> backend;
	bool readOnly = false;
	/// Meta contexts offered besides base:allocation; null: base:allocation only. Its
	/// metaExtents() runs where the backend's requests run (the server's workers, for a
	/// backend that may block), so concurrently.
	std::shared_ptr<MetaSource> meta;
};

struct ServerOptions {
	/// Largest READ/WRITE payload accepted (advertised as NBD_INFO_BLOCK_SIZE maximum).
	uint32_t maxPayload = limits::kDefaultMaxPayload;
	uint32_t preferredBlockSize = 4096;
	/// Where requests of backends that may block (isFast() == false) run: the blocking
	/// pool of this process's Runtime, which must outlive the server. Null: the server
	/// starts a pool of its own with workerThreads threads (tests, tools without one).
	Runtime *runtime = nullptr;
	unsigned workerThreads = 16;
	/// Requests one connection may have in flight before the server stops reading from it.
	unsigned maxInFlight = 128;
	/// Connections a Listener serves at once; more are closed right after accept.
	unsigned maxConnections = 512;
	/// Bound on the whole option haggling, so a slow client cannot hold a connection forever.
	std::chrono::milliseconds handshakeTimeout{ 30000 };
	/// A client that takes no reply bytes for this long is disconnected, so it cannot pin
	/// buffers and workers; after shutdown() the limit is a few seconds.
	std::chrono::milliseconds sendTimeout{ 120000 };
	/// Request payloads and read data held in memory across all connections at once.
	size_t maxBufferedBytes = size_t{ 1 } << 30;
	/// Mark serving threads PR_SET_IO_FLUSHER (needed when the kernel's own device is
	/// served from this process, so reclaim cannot deadlock on it). This covers the
	/// connection threads and the server's own pool; the threads of a shared `runtime`
	/// are not the server's to change, so give that Runtime
	/// `onBlockingStart = nbd::markIoFlusher` instead.
	bool ioFlusher = false;
	/// NBD_OPT_STARTTLS (see TlsPolicy). Unless Off, tlsContext is the server's TLS
	/// (transport::makeServerTlsContext(), with allowTls12 as the protocol wants).
	TlsPolicy tls = TlsPolicy::Off;
	std::shared_ptr<boost::asio::ssl::context> tlsContext;
};

/// Marks the calling thread PR_SET_IO_FLUSHER, so memory reclaim does not wait on the
/// writeback it serves. Needs CAP_SYS_RESOURCE; without it, logs at debug and carries on.
void markIoFlusher();

class Session;

/// Our NBD server: fixed newstyle handshake, structured replies, BLOCK_STATUS with
/// base:allocation and the meta contexts of an export's MetaSource, concurrent requests
/// with out-of-order replies. Transport independent: it serves any connected stream
/// socket (TCP, UNIX, socketpair). One thread per connection calls serve(); requests of
/// slow backends run on a shared worker pool.
class Server
{
public:
	explicit Server(ServerOptions options = {});
	~Server();
	Server(const Server &) = delete;
	Server &operator=(const Server &) = delete;

	/// Adds an export; the first one added is also the default (""). Call before serving.
	void addExport(Export exp);
	const std::vector<Export> &exports() const { return exports_; }
	const Export *findExport(const std::string &name) const;
	const ServerOptions &options() const { return options_; }

	/// Runs the whole protocol on a connected socket until the client leaves or
	/// shutdown() is called. Returns an error only for transport failures.
	Result<void> serve(UniqueFd socket);
	/// Transmission phase only, with simple replies: for the kernel's nbd driver, which
	/// expects the handshake to be done already. `sawDisc` (if given) tells whether the
	/// client ended with NBD_CMD_DISC; the kernel drops a connection without one when a
	/// request timed out on it.
	Result<void> serveTransmission(UniqueFd socket, const std::string &exportName, bool *sawDisc = nullptr);

	/// Transmission flags advertised for an export (also what the kernel is told).
	uint16_t transmissionFlags(const Export &exp, bool structuredReplies) const;

	/// Stops every connection: no new requests are read, requests in flight finish,
	/// backends are flushed, sockets close. serve() calls then return. Idempotent.
	void shutdown();
	bool stopping() const { return stopping_.load(); }

	Stats stats() const;

private:
	friend class Session;
	/// Registers the session for shutdown() and counts it while `body` runs.
	Result<void> run(Session &session, const std::function<Result<void>(Session &)> &body);
	/// The runtime's blocking pool, or the server's own, started on first use.
	ThreadPool &workers();
	/// Waits until `bytes` more fit in maxBufferedBytes (one request always fits).
	void acquireBuffers(size_t bytes);
	void releaseBuffers(size_t bytes);

	ServerOptions options_;
	std::vector<Export> exports_;
	BasicStats<std::atomic<uint64_t>> counters_;
	std::atomic<bool> stopping_{ false };
	std::mutex mutex_;
	std::unordered_set<Session *> sessions_;
	std::unique_ptr<ThreadPool> workers_;
	std::mutex budgetMutex_;
	std::condition_variable budgetCond_;
	size_t budgetUsed_ = 0;
};

} // namespace r3d::nbd
