#pragma once

#include <memory>
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

/// Chunks as S3 objects, one per chunk ("PREFIX/0000000000000007"), the geometry in
/// "PREFIX/r3map.meta". A missing object reads as zeros; trim deletes objects. The chunks
/// of one call are transferred in parallel.
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
	S3Backend(std::unique_ptr<S3Client> client, std::string prefix);
	std::string key(uint64_t index) const;

	std::unique_ptr<S3Client> client_;
	std::string prefix_;
};

} // namespace r3d::backends
