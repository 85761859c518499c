#include "backends/remote_backend.hpp"

#include <vector>

#include <fmt/format.h>

#include "base/host_port.hpp"
#include "base/runtime.hpp"
#include "stages/chunk_geometry.hpp"
#include "stages/chunk_range.hpp"
#include "transport/client_security.hpp"

namespace r3d::backends {

namespace {

constexpr uint64_t kMaxConnections = 64;

ResultMsg<transport::RpcClientOptions> remoteOptions(const BackendUri &u)
{
	auto ok = u.onlyParams(transport::ClientSecurity::params({ "connections", "timeout", "connect-timeout", "deadline" }));
	if (!ok)
		return unexpectedOf(ok.error());
	if (u.authority.empty())
		return fail(EINVAL, fmt::format("'{}': expected r3://HOST[:PORT]/NAME", u.text));
	auto hp = parseHostPort(u.authority, kDefaultRemotePort);
	if (!hp)
		return fail(EINVAL, fmt::format("'{}': {}", u.text, hp.error().message));
	if (hp->host.empty())
		return fail(EINVAL, fmt::format("'{}': the host is missing", u.text));

	transport::RpcClientOptions o;
	o.host = hp->host;
	o.port = hp->port;
	o.exportName = u.path.starts_with("/") ? u.path.substr(1) : u.path;
	auto security = transport::ClientSecurity::of(u);
	if (!security)
		return unexpectedOf(security.error());
	o.tls = std::move(security->tls);
	o.token = std::move(security->token);
	auto connections = u.sizeParam("connections");
	if (!connections)
		return unexpectedOf(connections.error());
	if (connections->value_or(1) > kMaxConnections)
		return fail(EINVAL, fmt::format("'{}': connections must be at most {}", u.text, kMaxConnections));
	o.connections = static_cast<unsigned>(connections->value_or(1));
	for (auto [key, field] : { std::pair{ "timeout", &o.requestTimeout }, std::pair{ "connect-timeout", &o.connectTimeout },
				   std::pair{ "deadline", &o.deadline } }) {
		auto d = u.durationParam(key, *field);
		if (!d)
			return unexpectedOf(d.error());
		*field = *d;
	}
	return o;
}

} // namespace

ResultMsg<std::shared_ptr<ReadWriterAt>> openRemoteUri(const BackendUri &uri)
{
	// Never destroyed: backends opened on it may live until exit, in any static.
	static Runtime *fallback = new Runtime(RuntimeOptions{ 1, 1, {} });
	return openRemoteUri(uri, *fallback);
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openRemoteUri(const BackendUri &uri, Runtime &runtime)
{
	auto options = remoteOptions(uri);
	if (!options)
		return unexpectedOf(options.error());
	auto remote = RemoteBackend::open(runtime, std::move(*options));
	if (!remote)
		return fail(remote.error().code, fmt::format("'{}': {}", uri.text, remote.error().message));
	return std::shared_ptr<ReadWriterAt>(std::move(*remote));
}

ResultMsg<std::unique_ptr<RemoteBackend>> RemoteBackend::open(Runtime &runtime, transport::RpcClientOptions options)
{
	auto client = transport::RpcClient::connect(runtime, std::move(options));
	if (!client)
		return unexpectedOf(client.error());
	return std::unique_ptr<RemoteBackend>(new RemoteBackend(std::move(*client)));
}

RemoteBackend::RemoteBackend(std::unique_ptr<transport::RpcClient> client)
	: client_(std::move(client)), size_(client_->info().size)
{
}

Result<void> RemoteBackend::checkWrite(uint64_t offset, uint64_t length) const
{
	R3D_TRY(checkRange(offset, length, size_, true));
	if (client_->info().readOnly)
		return unexpected(EROFS);
	return {};
}

Result<void> RemoteBackend::readAt(std::span<std::byte> buf, uint64_t offset)
{
	uint64_t chunk = preferredChunk();
	if (chunk == 0) {
		R3D_TRY(checkRange(offset, buf.size(), size_, false));
		return client_->read(buf, offset);
	}
	// A chunked export takes one chunk per range: a run of them is one READ_RANGES trip.
	R3D_TRY((stages::ChunkGeometry{ size_, chunk }.checkWholeChunks(offset, buf.size(), false)));
	std::vector<transport::IoRange> ranges;
	R3D_TRY(stages::forEachChunk(offset, buf.size(), chunk, size_, [&](const stages::ChunkPiece &p) {
		ranges.push_back(transport::IoRange{ p.chunkOffset(chunk), p.length });
		return Result<void>{};
	}));
	return ranges.empty() ? Result<void>{} : client_->readRanges(ranges, buf);
}

Result<void> RemoteBackend::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkWrite(offset, buf.size()));
	uint64_t chunk = preferredChunk();
	if (chunk == 0)
		return client_->write(buf, offset);
	R3D_TRY((stages::ChunkGeometry{ size_, chunk }.checkWholeChunks(offset, buf.size(), true)));
	return stages::forEachChunk(offset, buf.size(), chunk, size_, [&](const stages::ChunkPiece &p) {
		return client_->write(buf.subspan(p.bufPos, p.length), p.chunkOffset(chunk));
	});
}

Result<void> RemoteBackend::sync()
{
	return client_->sync();
}

Result<void> RemoteBackend::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkWrite(offset, length));
	return client_->trim(offset, length);
}

Result<void> RemoteBackend::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkWrite(offset, length));
	return client_->writeZeroes(offset, length);
}

} // namespace r3d::backends
