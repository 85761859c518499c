#pragma once

// Pushes one source to one receiver: on (re)connect it sends the hello and takes the copy's
// hashes, then every push() diffs the source's hashes against what the copy holds, sends
// the changed chunks as one generation and waits for its ack. The hashes recorded as the
// copy's are those of the bytes actually sent, so a source that changed between hashing
// and sending converges at the next push. A failed push drops the link; the next one
// reconnects and gets the copy's hashes again, so a receiver restart or a lost link costs
// only a hash exchange.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <r3d/result.hpp>

#include "sync/chunk_hasher.hpp"
#include "sync/sync_link.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::sync {

/// What a failed push means for retrying it. Transient: the link or the receiver may
/// recover (refused, reset, timed out, busy, out of space); retried with backoff. The
/// others are refusals that a retry only repeats: Auth (the token, EACCES), Tls (the TLS
/// handshake: certificate, name, or TLS on one side only), Version (the transport or sync
/// protocol version, or no sync service there), Refused (the receiver turned down the copy
/// or broke the protocol).
enum class SyncErrorKind { Transient, Auth, Tls, Version, Refused };
const char *syncErrorKindName(SyncErrorKind kind);
/// Of a failed SyncLink::connect (transport/service_connect.hpp), by its errno.
SyncErrorKind connectErrorKind(int error);

/// What a push reads: the source as of this round.
struct SyncSourceView {
	uint64_t size = 0;
	const std::vector<ChunkHash> *hashes = nullptr; ///< of `chunk`-sized chunks
	ChunkHasher::ReadFn read;
};

struct SyncSenderOptions {
	SyncLinkOptions link;
	uint64_t chunk = 1 << 20;
	std::chrono::milliseconds ackTimeout{ 600000 };
	/// Bytes of frames gathered into one write.
	size_t batchBytes = 8 << 20;
};

struct PushReport {
	uint64_t generation = 0;    ///< the copy's generation after the push
	uint64_t chunksChanged = 0;
	uint64_t bytesSent = 0;     ///< chunk payload bytes (compressed where they were)
	uint64_t wireBytes = 0;     ///< frames sent and received (headers, messages, payloads)
	bool reconnected = false;
};

class SyncSender
{
public:
	static ResultMsg<std::unique_ptr<SyncSender>> create(Runtime &runtime, SyncSenderOptions options);

	/// One generation with what changed (none if nothing did); fails with the receiver's
	/// errno and message, or the link's.
	ResultMsg<PushReport> push(const SyncSourceView &source);
	/// What the last failed push's error means (Transient after a success).
	SyncErrorKind lastFailure() const { return failure_; }
	/// The copy's generation the receiver last acknowledged (0 before any contact).
	uint64_t ackedGeneration() const { return generation_; }
	/// The chunks push() would send now.
	std::vector<uint64_t> changedChunks(const SyncSourceView &source) const;
	bool connected() const { return link_->connected(); }
	void close() { link_->close(); }
	const SyncSenderOptions &options() const { return options_; }

private:
	SyncSender(SyncSenderOptions options, std::unique_ptr<SyncLink> link);
	ResultMsg<void> handshake(uint64_t size, uint64_t &wire);
	ResultMsg<void> refused(SyncErrorKind kind, Error error);

	SyncSenderOptions options_;
	std::unique_ptr<SyncLink> link_;
	SyncErrorKind failure_ = SyncErrorKind::Transient;
	bool known_ = false; ///< the copy's state below is from this connection
	bool zstd_ = false;  ///< the receiver took zstd chunks
	uint64_t generation_ = 0;
	uint64_t copySize_ = 0;
	std::vector<ChunkHash> copyHashes_;
};

} // namespace r3d::sync
