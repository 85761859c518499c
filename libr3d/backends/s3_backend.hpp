#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include <optional>
#include <string>

#include <r3d/backend_uri.hpp>

#include "backends/chunk_store.hpp"
#include "backends/s3_client.hpp"

namespace r3d {
class Runtime;
}

namespace r3d::backends {

/// Opens s3://BUCKET/PREFIX?endpoint=URL&region=R&size=SIZE&chunk=SIZE&parallel=N&timeout=D
/// &deadline=D, with credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
/// AWS_SESSION_TOKEN.
ResultMsg<std::shared_ptr<ReadWriterAt>> openS3Uri(const BackendUri &uri, Runtime *runtime = nullptr);

/// Chunks as S3 objects, one per chunk write ("PREFIX/0000000000000007.0000030000000012":
/// chunk index, then a version), the geometry in "PREFIX/r3map.meta". A chunk reads as its
/// object of the highest version, zeros if it has none or that one is empty (a trim).
///
/// The versions fence late writes: a PUT that reaches S3 after a newer write of its chunk
/// (a request stuck in the network while the client timed out, retried and went on) lands
/// under an older version and is never read. A version is the open's epoch (a counter in
/// "PREFIX/r3map.epoch", raised at every open) and a sequence number of that open, so a PUT
/// of an earlier run can never take the key of a later one. This needs nothing but PUT,
/// GET, DELETE and ListObjectsV2, so it works on any S3 (conditional writes would not on
/// s3rver). An unacknowledged PUT of an earlier run that lands after this open is not
/// read now; it can become its chunk's contents at a later open only if nothing wrote the
/// chunk since: a write that run made, never older data over newer. Superseded objects are
/// deleted with the next batch of writes (a trim deletes them at once), and any left
/// behind (a crash) at the next open. One writer at a time: an open lists the chunks once
/// and does not see another process's later writes.
class S3Backend final : public ChunkStore
{
public:
	static constexpr uint64_t kDefaultChunkSize = 1024 * 1024;

	static ResultMsg<std::unique_ptr<S3Backend>> open(S3Config config, std::string prefix, std::optional<uint64_t> size,
							  std::optional<uint64_t> chunkSize);

protected:
	Result<void> getChunks(std::span<const ChunkRead> chunks) override;
	Result<void> putChunks(std::span<const ChunkWrite> chunks) override;
	Result<void> deleteChunks(std::span<const uint64_t> indices) override;

private:
	/// No object for the chunk (it reads as zeros).
	static constexpr uint64_t kAbsent = ~uint64_t{ 0 };
	/// Set on the version of an empty object: a trimmed chunk, zeros.
	static constexpr uint64_t kTrimmed = uint64_t{ 1 } << 63;
	static constexpr unsigned kSequenceBits = 40;

	S3Backend(std::unique_ptr<S3Client> client, std::string prefix);
	std::string key(uint64_t index, uint64_t version) const;
	ResultMsg<void> openEpoch(const std::string &where);
	ResultMsg<void> loadVersions(const std::string &where);
	/// PUTs `bodies` as new versions of `indices`, with the pending deletes; on success the
	/// chunks read the new versions.
	Result<void> putVersions(std::span<const uint64_t> indices, std::span<const std::span<const std::byte>> bodies,
				 bool trimmed);
	std::vector<S3Request> takeDeletes();

	std::unique_ptr<S3Client> client_;
	std::string prefix_;
	uint64_t epoch_ = 0;
	std::atomic<uint64_t> sequence_{ 0 };
	std::mutex mutex_;
	std::vector<uint64_t> versions_;       ///< per chunk; guarded by mutex_
	std::vector<std::string> superseded_; ///< keys to delete; guarded by mutex_
};

} // namespace r3d::backends
