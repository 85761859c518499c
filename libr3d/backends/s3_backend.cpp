#include "backends/s3_backend.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include <r3d/log.hpp>

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

std::string S3Backend::key(uint64_t index, uint64_t version) const
{
	// Version 0 is the key of stores written before versions, which still read.
	if (version == 0)
		return fmt::format("{}/{:016x}", prefix_, index);
	return fmt::format("{}/{:016x}.{:016x}", prefix_, index, version);
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
	if (auto epoch = backend->openEpoch(where); !epoch)
		return unexpectedOf(epoch.error());
	if (auto versions = backend->loadVersions(where); !versions)
		return unexpectedOf(versions.error());
	return backend;
}

ResultMsg<void> S3Backend::openEpoch(const std::string &where)
{
	std::array<std::byte, 32> text{};
	S3Request get;
	get.key = prefix_ + "/r3map.epoch";
	get.into = text;
	get.exact = false;
	if (auto ok = client_->run(std::span(&get, 1)); !ok)
		return fail(ok.error(), fmt::format("{}: cannot read '{}': {}", where, get.key, ok.error().message()));
	uint64_t last = 0;
	if (!get.missing) {
		const char *p = reinterpret_cast<const char *>(text.data());
		auto [end, ec] = std::from_chars(p, p + get.received, last);
		if (ec != std::errc() || end != p + get.received)
			return fail(EIO, fmt::format("{}: '{}' is not a number", where, get.key));
	}
	if (last + 1 >= (kTrimmed >> kSequenceBits))
		return fail(EOVERFLOW, fmt::format("{}: '{}' has run out of epochs", where, get.key));
	epoch_ = last + 1;
	std::string next = std::to_string(epoch_);
	S3Request put;
	put.method = S3Request::Method::Put;
	put.key = get.key;
	put.body = std::as_bytes(std::span(next));
	if (auto ok = client_->run(std::span(&put, 1)); !ok)
		return fail(ok.error(), fmt::format("{}: cannot write '{}': {}", where, put.key, ok.error().message()));
	return {};
}

ResultMsg<void> S3Backend::loadVersions(const std::string &where)
{
	auto objects = client_->list(prefix_ + "/");
	if (!objects)
		return unexpectedOf(objects.error());
	uint64_t chunks = chunkSize() ? (size() + chunkSize() - 1) / chunkSize() : 0;
	versions_.assign(chunks, kAbsent);
	auto hex = [](std::string_view text, uint64_t &value) {
		auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
		return text.size() == 16 && ec == std::errc() && end == text.data() + text.size();
	};
	for (const auto &o : *objects) {
		std::string_view name(o.key);
		name.remove_prefix(prefix_.size() + 1);
		uint64_t index = 0, version = 0;
		// Other objects under the prefix (the meta, the epoch, a user's) are not chunks.
		if (name.size() < 16 || !hex(name.substr(0, 16), index) || index >= chunks)
			continue;
		if (name.size() > 16 && (name[16] != '.' || !hex(name.substr(17), version) || version == 0))
			continue;
		if (version >= (epoch_ << kSequenceBits)) {
			log::get("s3")->warn("{}: '{}' has a version of a later open than this one: skipped", where, o.key);
			continue;
		}
		uint64_t &current = versions_[index];
		uint64_t tagged = version | (o.size == 0 ? kTrimmed : 0);
		if (current != kAbsent && (current & ~kTrimmed) > version) {
			superseded_.push_back(o.key);
			continue;
		}
		if (current != kAbsent)
			superseded_.push_back(key(index, current & ~kTrimmed));
		current = tagged;
	}
	// Left behind by a crash or by late PUTs; best effort, the next batch tries again.
	auto deletes = takeDeletes();
	if (!deletes.empty() && !client_->run(deletes))
		log::get("s3")->warn("{}: {} superseded chunk objects could not be deleted yet", where, deletes.size());
	return {};
}

std::vector<S3Request> S3Backend::takeDeletes()
{
	std::vector<std::string> keys;
	{
		std::lock_guard lock(mutex_);
		keys.swap(superseded_);
	}
	std::vector<S3Request> requests(keys.size());
	for (size_t i = 0; i < keys.size(); ++i) {
		requests[i].method = S3Request::Method::Delete;
		requests[i].key = std::move(keys[i]);
	}
	return requests;
}

Result<void> S3Backend::getChunks(std::span<const ChunkRead> chunks)
{
	// A write of the chunk may supersede and delete the version asked for while the GET
	// runs: a missing object whose version changed meanwhile is asked for again.
	std::vector<size_t> todo(chunks.size());
	for (size_t i = 0; i < todo.size(); ++i)
		todo[i] = i;
	for (int attempt = 0; !todo.empty(); ++attempt) {
		if (attempt == 16)
			return unexpected(EIO);
		std::vector<S3Request> requests;
		std::vector<uint64_t> asked;
		std::vector<size_t> sent;
		{
			std::lock_guard lock(mutex_);
			for (size_t i : todo) {
				uint64_t v = versions_[chunks[i].index];
				if (v == kAbsent || (v & kTrimmed)) {
					std::memset(chunks[i].data.data(), 0, chunks[i].data.size());
					continue;
				}
				S3Request r;
				r.key = key(chunks[i].index, v);
				r.into = chunks[i].data;
				requests.push_back(std::move(r));
				asked.push_back(v);
				sent.push_back(i);
			}
		}
		if (auto ok = client_->run(requests); !ok)
			return ok;
		todo.clear();
		std::lock_guard lock(mutex_);
		for (size_t j = 0; j < requests.size(); ++j) {
			if (!requests[j].missing)
				continue;
			if (versions_[chunks[sent[j]].index] == asked[j]) {
				// Listed or written by this open, and gone: never serve zeros for it.
				log::get("s3")->error("{}: {} disappeared", client_->where(), requests[j].key);
				return unexpected(EIO);
			}
			todo.push_back(sent[j]);
		}
	}
	return {};
}

Result<void> S3Backend::putVersions(std::span<const uint64_t> indices,
				    std::span<const std::span<const std::byte>> bodies, bool trimmed)
{
	std::vector<S3Request> requests = takeDeletes();
	size_t first = requests.size();
	std::vector<uint64_t> versions(indices.size());
	for (size_t i = 0; i < indices.size(); ++i) {
		uint64_t sequence = sequence_.fetch_add(1) + 1;
		if (sequence >> kSequenceBits)
			return unexpected(EOVERFLOW); // 2^40 writes in one open: reopen for a new epoch
		versions[i] = (epoch_ << kSequenceBits) | sequence;
		S3Request r;
		r.method = S3Request::Method::Put;
		r.key = key(indices[i], versions[i]);
		r.body = trimmed ? std::span<const std::byte>{} : bodies[i];
		requests.push_back(std::move(r));
	}
	auto ok = client_->run(requests);
	std::lock_guard lock(mutex_);
	for (size_t i = 0; i < first; ++i)
		if (requests[i].error)
			superseded_.push_back(std::move(requests[i].key));
	for (size_t i = 0; i < indices.size(); ++i) {
		// A PUT that failed may still land; under its own version it can only lose to
		// the chunk's next write.
		if (requests[first + i].error)
			continue;
		uint64_t &current = versions_[indices[i]];
		if (current != kAbsent && (current & ~kTrimmed) > versions[i]) {
			superseded_.push_back(std::move(requests[first + i].key)); // a newer write won
			continue;
		}
		if (current != kAbsent)
			superseded_.push_back(key(indices[i], current & ~kTrimmed));
		current = versions[i] | (trimmed ? kTrimmed : 0);
	}
	return ok;
}

Result<void> S3Backend::putChunks(std::span<const ChunkWrite> chunks)
{
	std::vector<uint64_t> indices(chunks.size());
	std::vector<std::span<const std::byte>> bodies(chunks.size());
	for (size_t i = 0; i < chunks.size(); ++i) {
		indices[i] = chunks[i].index;
		bodies[i] = chunks[i].data;
	}
	return putVersions(indices, bodies, false);
}

Result<void> S3Backend::deleteChunks(std::span<const uint64_t> indices)
{
	// A trimmed chunk keeps an empty object of a new version, so that a late PUT of its
	// old contents cannot bring them back; its older objects go at once.
	if (auto ok = putVersions(indices, {}, true); !ok)
		return ok;
	auto deletes = takeDeletes();
	if (deletes.empty())
		return {};
	// The trim is done either way; what is not deleted now goes with the next batch.
	if (!client_->run(deletes)) {
		std::lock_guard lock(mutex_);
		for (auto &r : deletes)
			if (r.error)
				superseded_.push_back(std::move(r.key));
	}
	return {};
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
