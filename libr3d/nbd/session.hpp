#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "base/buffer_pool.hpp"
#include "nbd/protocol.hpp"
#include "nbd/server.hpp"
#include "nbd/socket_reader.hpp"
#include "nbd/tls_relay.hpp"

namespace r3d::nbd {

/// One client connection: option haggling, then the transmission loop. The thread that
/// calls run() reads and validates requests; a fast backend runs them on that thread and
/// batches the replies, a slow one runs them on the server's workers, which reply out of
/// order as they finish.
///
/// BLOCK_STATUS answers for the meta contexts the last SET_META_CONTEXT chose:
/// base:allocation (id 1) and those of the export's MetaSource (id 2 + index), for the
/// export they were chosen for; entering another export drops them.
///
/// The member functions are spread over three files by phase: session.cpp (construction,
/// run, stop), handshake.cpp (option haggling) and transmission.cpp (requests and replies).
class Session
{
public:
	Session(Server &server, UniqueFd fd);

	/// Handshake, then transmission until the client leaves or stop().
	Result<void> run();
	/// Transmission only, with simple replies (the kernel client).
	Result<void> runTransmission(const Export &exp);
	bool sawDisc() const { return sawDisc_; }
	/// Makes run() wind down: no further requests are read, requests in flight finish,
	/// and a client that does not take its replies is dropped after a short grace.
	/// Thread-safe.
	void stop();

private:
	struct Request {
		uint16_t flags;
		uint16_t type;
		uint64_t handle;
		uint64_t offset;
		uint32_t length;
	};

	enum class Step { Continue, Transmit, Close };

	/// What validate() decided: error 0 to go ahead, else the wire error and the rule
	/// the request broke (for the log).
	struct Verdict {
		uint32_t error = 0;
		const char *reason = "";
	};

	static constexpr size_t kReaderBuffer = 256 * 1024;

	// Handshake.
	Result<bool> handshake();
	Result<Step> handleOption(uint32_t opt, std::vector<std::byte> &data);
	Result<Step> handleInfo(uint32_t opt, const std::vector<std::byte> &data);
	Result<Step> handleMetaContext(uint32_t opt, const std::vector<std::byte> &data);
	/// NBD_OPT_STARTTLS: the handshake, then everything goes through the TLS relay.
	Result<Step> startTls(uint32_t opt, const std::vector<std::byte> &data);
	/// Before TLS with TlsPolicy::Require: the refusal of any other option.
	Result<Step> refuseWithoutTls(uint32_t opt);
	/// Makes `exp` the export of the transmission phase, dropping meta contexts that were
	/// chosen for another one.
	void enterExport(const Export &exp);
	Result<void> sendOptReply(uint32_t opt, Rep type, std::span<const std::byte> data = {});
	Result<void> sendOptError(uint32_t opt, Rep type, const std::string &message);
	Result<void> sendExportInfo(uint32_t opt, const Export &exp, Info info);

	// Transmission.
	Result<void> transmission();
	Verdict validate(const Request &r) const;
	void execute(const Request &r, std::span<const std::byte> payload, std::vector<std::byte> &out);
	void executeRead(const Request &r, std::vector<std::byte> &out);
	uint32_t readSparse(const Request &r, std::vector<std::byte> &out);
	void executeBlockStatus(const Request &r, std::vector<std::byte> &out);
	void replyDone(const Request &r, uint32_t error, std::vector<std::byte> &out);
	void appendError(const Request &r, uint32_t error, std::vector<std::byte> &out);
	void dispatchToWorker(const Request &r, BufferPool::Lease payload, size_t budget);
	void writerLoop();
	void flushBatch();
	Result<void> send(std::span<const std::byte> bytes);
	void sendLocked(std::span<const std::byte> bytes);
	void waitForWindow(size_t bytes);
	void finishWorker(size_t bytes);
	void countRequest(const Request &r);
	void markWrite(const Request &r);

	Server &server_;
	UniqueFd fd_; ///< the client's socket; stop() shuts it down, also under TLS
	// After STARTTLS: the relay and our clear end of it, closed first (members are
	// destroyed in reverse), so the relay can finish.
	std::unique_ptr<TlsRelay> tls_;
	UniqueFd plain_;
	int io_; ///< what requests and replies go through: fd_, or plain_ under TLS
	std::string peer_; ///< the client's address, for log lines
	bool refusedInClear_ = false;
	unsigned optionsInTls_ = 0;
	SocketReader reader_;
	const Export *export_ = nullptr;
	bool noZeroes_ = false;
	bool structured_ = false;
	// The meta contexts of the last NBD_OPT_SET_META_CONTEXT, chosen for export metaExport_.
	bool metaBaseAllocation_ = false;
	std::vector<size_t> metaContexts_; ///< indices into the export's MetaSource::contexts(), ascending
	std::string metaExport_;
	bool inline_ = true;
	bool wrote_ = false;
	bool sawDisc_ = false; ///< the client ended with NBD_CMD_DISC (not just EOF)

	std::vector<std::byte> batch_; ///< replies of inline requests, sent before blocking
	std::mutex sendMutex_;
	bool sendFailed_ = false;

	std::atomic<bool> stopRequested_{ false };

	// Worker mode: requests count as in flight until their reply is on the wire.
	std::mutex flightMutex_;
	std::condition_variable flightCond_;
	unsigned inFlight_ = 0;
	size_t inFlightBytes_ = 0;

	// Worker mode: finished replies wait here for the session's writer thread, so a
	// client that stops reading blocks only its own writer, never the shared workers.
	struct PendingReply {
		BufferPool::Lease bytes;
		size_t budget = 0;
	};
	std::mutex replyMutex_;
	std::condition_variable replyCond_;
	std::deque<PendingReply> replies_;
	bool writerDone_ = false;

	BufferPool buffers_;
};

} // namespace r3d::nbd
