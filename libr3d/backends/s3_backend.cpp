#include "backends/s3_backend.hpp"

#include <cstdlib>

#include <fmt/format.h>

namespace r3d::backends {

namespace {

constexpr size_t kMaxMetaSize = 256;
constexpr unsigned kMaxParallel = 256;

// Keys are used in URLs and signatures as they are, so only characters that need no
// escaping are allowed.
bool isPlainKey(const std::string &prefix)
{
	if (prefix.empty() || prefix.front() == '/' || prefix.back() == '/' || prefix.find("//") != std::string::npos ||
	    prefix.find("..") != std::string::npos)
		return false;
	for (char c : prefix)
		if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != '/')
			return false;
	return true;
}

std::string env(const char *name)
{
	const char *v = std::getenv(name);
	return v ? v : "";
}

} // namespace

S3Backend::S3Backend(std::unique_ptr<S3Client> client, std::string prefix)
	: client_(std::move(client)), prefix_(std::move(prefix))
{
}

std::string S3Backend::key(uint64_t index) const
{
	return fmt::format("{}/{:016x}", prefix_, index);
}

ResultMsg<std::unique_ptr<S3Backend>> S3Backend::open(S3Config config, std::string prefix, std::optional<uint64_t> size,
						      std::optional<uint64_t> chunkSize)
{
	if (!isPlainKey(prefix))
		return fail(EINVAL, fmt::format("s3: prefix '{}' must be letters, digits, '-', '_', '.' and inner '/'",
						prefix));
	std::string where = fmt::format("s3://{}/{} ({})", config.bucket, prefix, config.endpoint);
	auto client = S3Client::create(std::move(config));
	if (!client)
		return unexpectedOf(client.error());
	std::unique_ptr<S3Backend> backend(new S3Backend(std::move(*client), std::move(prefix)));

	std::array<std::byte, kMaxMetaSize> text{};
	S3Request meta;
	meta.key = backend->prefix_ + "/r3map.meta";
	meta.into = text;
	meta.exact = false;
	auto read = backend->client_->run(std::span(&meta, 1));
	if (!read)
		return fail(read.error(), fmt::format("{}: cannot read '{}': {} (see the log for the S3 error)", where,
						      meta.key, read.error().message()));
	std::optional<std::string> stored;
	if (!meta.missing)
		stored = std::string(reinterpret_cast<const char *>(text.data()), meta.received);
	auto g = StoreGeometry::resolve(stored, size, chunkSize, kDefaultChunkSize, where);
	if (!g)
		return unexpectedOf(g.error());
	if (!stored) {
		std::string formatted = g->format();
		S3Request put;
		put.method = S3Request::Method::Put;
		put.key = meta.key;
		put.body = std::as_bytes(std::span(formatted));
		auto written = backend->client_->run(std::span(&put, 1));
		if (!written)
			return fail(written.error(),
				    fmt::format("{}: cannot write '{}': {}", where, put.key, written.error().message()));
	}
	backend->setGeometry(g->size, g->chunkSize);
	return backend;
}

Result<void> S3Backend::getChunks(std::span<const ChunkRead> chunks)
{
	std::vector<S3Request> requests(chunks.size());
	for (size_t i = 0; i < chunks.size(); ++i) {
		requests[i].key = key(chunks[i].index);
		requests[i].into = chunks[i].data;
	}
	return client_->run(requests);
}

Result<void> S3Backend::putChunks(std::span<const ChunkWrite> chunks)
{
	std::vector<S3Request> requests(chunks.size());
	for (size_t i = 0; i < chunks.size(); ++i) {
		requests[i].method = S3Request::Method::Put;
		requests[i].key = key(chunks[i].index);
		requests[i].body = chunks[i].data;
	}
	return client_->run(requests);
}

Result<void> S3Backend::deleteChunks(std::span<const uint64_t> indices)
{
	std::vector<S3Request> requests(indices.size());
	for (size_t i = 0; i < indices.size(); ++i) {
		requests[i].method = S3Request::Method::Delete;
		requests[i].key = key(indices[i]);
	}
	return client_->run(requests);
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openS3Uri(const BackendUri &u, Runtime *runtime)
{
	S3Config c;
	StoreParams params{ {}, {}, c.parallel, c.timeout, c.retry };
	auto ok = params.parse(u, "parallel", kMaxParallel, { "endpoint", "region" });
	if (!ok)
		return unexpectedOf(ok.error());
	if (u.authority.empty())
		return fail(EINVAL, fmt::format("'{}': expected s3://BUCKET/PREFIX?size=SIZE", u.text));
	c.bucket = u.authority;
	auto param = [&](const char *key, std::string fallback) {
		auto it = u.params.find(key);
		return it == u.params.end() ? fallback : it->second;
	};
	std::string regionEnv = env("AWS_REGION").empty() ? env("AWS_DEFAULT_REGION") : env("AWS_REGION");
	c.region = param("region", regionEnv.empty() ? "us-east-1" : regionEnv);
	c.endpoint = param("endpoint", fmt::format("https://s3.{}.amazonaws.com", c.region));
	while (c.endpoint.ends_with("/"))
		c.endpoint.pop_back();
	if (!c.endpoint.starts_with("http://") && !c.endpoint.starts_with("https://"))
		return fail(EINVAL, fmt::format("'{}': endpoint must be an http:// or https:// URL", u.text));
	c.accessKey = env("AWS_ACCESS_KEY_ID");
	c.secretKey = env("AWS_SECRET_ACCESS_KEY");
	c.sessionToken = env("AWS_SESSION_TOKEN");
	c.parallel = params.concurrency;
	c.timeout = params.timeout;
	c.retry = params.retry;
	c.runtime = runtime;
	std::string prefix = u.path.starts_with("/") ? u.path.substr(1) : u.path;
	return sharedStore(u, S3Backend::open(std::move(c), std::move(prefix), params.size, params.chunkSize));
}

} // namespace r3d::backends
