#pragma once

#include <memory>

#include <r3d/backend_uri.hpp>
#include <r3d/read_writer_at.hpp>

#include "transport/block/rpc_client.hpp"

namespace r3d {

class Runtime;

namespace backends {

/// The default port of r3:// URIs.
inline constexpr const char *kDefaultRemotePort = "7700";

/// Opens r3://HOST[:PORT]/NAME?tls-ca=F&tls-cert=F&tls-key=F&tls-name=N&tls=on&token-file=F
/// &connections=N&timeout=D&connect-timeout=D&deadline=D for the backend factory. The
/// backend is raw: an export served in chunks takes whole chunks (preferredChunk()). The
/// client runs on `runtime`, which must outlive the backend.
ResultMsg<std::shared_ptr<ReadWriterAt>> openRemoteUri(const BackendUri &uri, Runtime &runtime);
/// The same on a process-wide Runtime of one io thread, for the backend factory until it
/// passes the caller's Runtime.
ResultMsg<std::shared_ptr<ReadWriterAt>> openRemoteUri(const BackendUri &uri);

/// A backend served by another host over the r3 transport (r3://HOST:PORT/NAME). The size
/// is the export's, learned at connect. Calls larger than the transport's payload limit
/// are split into requests that travel concurrently.
class RemoteBackend final : public ReadWriterAt
{
public:
	static ResultMsg<std::unique_ptr<RemoteBackend>> open(Runtime &runtime, transport::RpcClientOptions options);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return size_; }
	Result<void> sync() override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;

	/// The export's chunk size: a chunked export takes whole chunks only.
	uint64_t preferredChunk() const override { return client_->info().chunkSize; }

	const transport::RemoteExportInfo &info() const { return client_->info(); }

private:
	explicit RemoteBackend(std::unique_ptr<transport::RpcClient> client);
	Result<void> checkWrite(uint64_t offset, uint64_t length) const;

	std::unique_ptr<transport::RpcClient> client_;
	uint64_t size_;
};

} // namespace backends
} // namespace r3d
