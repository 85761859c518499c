#include "backends/redis_backend.hpp"

#include <cstring>

#include <sys/socket.h>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <r3d/unique_fd.hpp>

#include "base/host_port.hpp"

namespace r3d::backends {

namespace {

constexpr const char *kComponent = "redis";
constexpr uint64_t kMaxConnections = 256;

timeval toTimeval(std::chrono::milliseconds d)
{
	return timeval{ static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>(d.count() % 1000 * 1000) };
}

// Server errors a retry can cure (loading a dump, a busy script, a failover) versus those
// it cannot, as errno.
Attempt replyError(const redisReply *r, const std::string &where)
{
	std::string text(r->str, r->len);
	auto starts = [&](const char *word) { return text.rfind(word, 0) == 0; };
	if (starts("LOADING") || starts("BUSY") || starts("TRYAGAIN") || starts("MASTERDOWN") || starts("CLUSTERDOWN"))
		return Attempt::transient("server busy: " + text);
	log::get(kComponent)->error("{}: {}", where, text);
	if (starts("NOAUTH") || starts("WRONGPASS") || starts("NOPERM"))
		return Attempt::failed(EACCES);
	if (starts("OOM"))
		return Attempt::failed(ENOSPC);
	if (starts("READONLY"))
		return Attempt::failed(EROFS);
	return Attempt::failed(EIO);
}

} // namespace

RedisBackend::RedisBackend(Options options)
	: options_(std::move(options)),
	  where_(fmt::format("redis://{}:{}/{}", options_.host, options_.port, options_.prefix))
{
}

RedisBackend::~RedisBackend()
{
	for (auto *c : idle_)
		redisFree(c);
}

std::string RedisBackend::key(uint64_t index) const
{
	return fmt::format("{}:{:016x}", options_.prefix, index);
}

redisContext *RedisBackend::acquire(std::string &why)
{
	{
		std::unique_lock lock(mutex_);
		available_.wait(lock, [&] { return !idle_.empty() || open_ < options_.store.concurrency; });
		if (!idle_.empty()) {
			auto *c = idle_.back();
			idle_.pop_back();
			return c;
		}
		open_++;
	}
	redisContext *c = redisConnectWithTimeout(options_.host.c_str(), options_.port, toTimeval(options_.store.timeout));
	if (!c || c->err) {
		why = c ? fmt::format("cannot connect: {}", c->errstr) : "cannot connect: out of memory";
		if (c)
			redisFree(c);
		std::lock_guard lock(mutex_);
		open_--;
		available_.notify_one();
		return nullptr;
	}
	setCloexec(c->fd);
	redisSetTimeout(c, toTimeval(options_.store.timeout));
	redisEnableKeepAlive(c);
	// Known ids let a later attempt kill this client if the connection is lost (pipeline).
	long long id = 0;
	if (auto *r = static_cast<redisReply *>(redisCommand(c, "CLIENT ID"))) {
		if (r->type == REDIS_REPLY_INTEGER)
			id = r->integer;
		else if (!warnedNoClientId_.exchange(true))
			log::get(kComponent)->warn("{}: CLIENT ID refused ({}): a write re-sent after a lost connection "
						   "may be overtaken by its first copy",
						   where_, r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "?");
		freeReplyObject(r);
	} else {
		why = fmt::format("connection lost: {}", c->errstr[0] ? c->errstr : "EOF");
		release(c, false);
		return nullptr;
	}
	std::lock_guard lock(mutex_);
	clientIds_[c] = id;
	return c;
}

bool RedisBackend::killClient(redisContext *c, long long id)
{
	auto *r = static_cast<redisReply *>(redisCommand(c, "CLIENT KILL ID %lld", id));
	if (!r)
		return false;
	// "No such client": it is gone already, and whatever it carried with it.
	if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).find("No such client") == std::string_view::npos)
		log::get(kComponent)->warn("{}: cannot end the lost connection's client {}: {}", where_, id,
					   std::string_view(r->str, r->len));
	freeReplyObject(r);
	return true;
}

void RedisBackend::release(redisContext *c, bool healthy)
{
	if (!healthy) {
		linger reset{ 1, 0 };
		::setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	}
	std::lock_guard lock(mutex_);
	if (healthy) {
		idle_.push_back(c);
	} else {
		clientIds_.erase(c);
		redisFree(c);
		open_--;
	}
	available_.notify_one();
}

template <class OnReply>
Attempt RedisBackend::pipeline(const std::vector<ArgvCommand> &commands, OnReply &&onReply, long long &lostClient)
{
	std::string why;
	redisContext *c = acquire(why);
	if (!c)
		return Attempt::transient(why);
	if (lostClient != 0) {
		if (!killClient(c, lostClient)) {
			Attempt lost = Attempt::transient(fmt::format("connection lost: {}", c->errstr[0] ? c->errstr : "EOF"));
			release(c, false);
			return lost;
		}
		lostClient = 0;
	}
	for (const auto &cmd : commands)
		redisAppendCommandArgv(c, static_cast<int>(cmd.argv.size()), const_cast<const char **>(cmd.argv.data()),
				       cmd.lengths.data());
	// Every reply is read, even after a failed one, so the connection stays in step.
	Attempt result;
	for (size_t i = 0; i < commands.size(); ++i) {
		void *raw = nullptr;
		if (redisGetReply(c, &raw) != REDIS_OK || !raw) {
			Attempt lost = Attempt::transient(fmt::format("connection lost: {}", c->errstr[0] ? c->errstr : "EOF"));
			{
				std::lock_guard lock(mutex_);
				lostClient = clientIds_[c];
			}
			release(c, false);
			return lost;
		}
		auto *reply = static_cast<redisReply *>(raw);
		Attempt a = reply->type == REDIS_REPLY_ERROR ? replyError(reply, where_) : onReply(i, reply);
		freeReplyObject(reply);
		if (result.kind == Attempt::Done || (result.kind == Attempt::Transient && a.kind == Attempt::Failed))
			result = a;
	}
	release(c, true);
	return result;
}

template <class OnReply>
Result<void> RedisBackend::run(const std::vector<ArgvCommand> &commands, OnReply &&onReply)
{
	long long lostClient = 0;
	return retry(options_.store.retry, kComponent, where_,
		     [&] { return pipeline(commands, onReply, lostClient); });
}

Result<void> RedisBackend::getChunks(std::span<const ChunkRead> chunks)
{
	std::vector<std::string> keys;
	std::vector<ArgvCommand> commands;
	keys.reserve(chunks.size());
	for (const auto &c : chunks) {
		keys.push_back(key(c.index));
		commands.push_back({ { "GET", keys.back().data() }, { 3, keys.back().size() } });
	}
	return run(commands, [&](size_t i, const redisReply *r) {
		auto dst = chunks[i].data;
		if (r->type == REDIS_REPLY_NIL) {
			std::memset(dst.data(), 0, dst.size());
			return Attempt::done();
		}
		if (r->type != REDIS_REPLY_STRING || r->len != dst.size()) {
			log::get(kComponent)->error("{}: key '{}' holds {} bytes, not a chunk of {}", where_, keys[i],
						    r->type == REDIS_REPLY_STRING ? r->len : 0, dst.size());
			return Attempt::failed(EIO);
		}
		std::memcpy(dst.data(), r->str, dst.size());
		return Attempt::done();
	});
}

Result<void> RedisBackend::putChunks(std::span<const ChunkWrite> chunks)
{
	std::vector<std::string> keys;
	std::vector<ArgvCommand> commands;
	keys.reserve(chunks.size());
	for (const auto &c : chunks) {
		keys.push_back(key(c.index));
		commands.push_back({ { "SET", keys.back().data(), reinterpret_cast<const char *>(c.data.data()) },
				     { 3, keys.back().size(), c.data.size() } });
	}
	return run(commands, [](size_t, const redisReply *) { return Attempt::done(); });
}

Result<void> RedisBackend::deleteChunks(std::span<const uint64_t> indices)
{
	std::vector<std::string> keys;
	keys.reserve(indices.size());
	ArgvCommand del{ { "DEL" }, { 3 } };
	for (uint64_t i : indices) {
		keys.push_back(key(i));
		del.argv.push_back(keys.back().data());
		del.lengths.push_back(keys.back().size());
	}
	return run({ del }, [](size_t, const redisReply *) { return Attempt::done(); });
}

ResultMsg<std::unique_ptr<RedisBackend>> RedisBackend::open(Options options)
{
	if (options.prefix.empty())
		return fail(EINVAL, "redis: give a key prefix, e.g. redis://HOST:PORT/vm42?size=8G");
	if (options.store.concurrency == 0 || options.store.concurrency > kMaxConnections)
		return fail(EINVAL, fmt::format("redis: connections must be in 1 .. {}", kMaxConnections));
	auto size = options.store.size;
	auto chunkSize = options.store.chunkSize;
	std::unique_ptr<RedisBackend> backend(new RedisBackend(std::move(options)));
	const std::string &where = backend->where_;
	std::string why;
	auto *c = backend->acquire(why);
	if (!c)
		return fail(ECONNREFUSED, fmt::format("{}: {}", where, why));
	backend->release(c, true);

	std::string metaKey = backend->options_.prefix + ":meta";
	std::optional<std::string> stored;
	ArgvCommand get{ { "GET", metaKey.data() }, { 3, metaKey.size() } };
	auto read = backend->run({ get }, [&](size_t, const redisReply *r) {
		if (r->type == REDIS_REPLY_STRING)
			stored = std::string(r->str, r->len);
		return Attempt::done();
	});
	if (!read)
		return fail(read.error(), fmt::format("{}: cannot read '{}': {}", where, metaKey, read.error().message()));
	auto g = StoreGeometry::resolve(stored, size, chunkSize, kDefaultChunkSize, where);
	if (!g)
		return unexpectedOf(g.error());
	if (!stored) {
		// NX: two first opens at once cannot both write a geometry.
		std::string text = g->format();
		bool won = false;
		ArgvCommand set{ { "SET", metaKey.data(), text.data(), "NX" }, { 3, metaKey.size(), text.size(), 2 } };
		auto written = backend->run({ set }, [&](size_t, const redisReply *r) {
			won = r->type == REDIS_REPLY_STATUS;
			return Attempt::done();
		});
		if (!written)
			return fail(written.error(),
				    fmt::format("{}: cannot write '{}': {}", where, metaKey, written.error().message()));
		if (!won)
			return fail(EBUSY, fmt::format("{}: another client created this device at the same time; open again",
						       where));
	}
	backend->setGeometry(g->size, g->chunkSize);
	return backend;
}

ResultMsg<std::shared_ptr<ReadWriterAt>> openRedisUri(const BackendUri &u)
{
	RedisBackend::Options o;
	auto ok = o.store.parse(u, "connections", kMaxConnections);
	if (!ok)
		return unexpectedOf(ok.error());
	if (u.authority.empty())
		return fail(EINVAL, fmt::format("'{}': expected redis://HOST[:PORT]/PREFIX?size=SIZE", u.text));
	auto hp = parseHostPort(u.authority, "6379");
	if (!hp)
		return fail(EINVAL, fmt::format("'{}': {}", u.text, hp.error().message));
	o.host = hp->host.empty() ? "127.0.0.1" : hp->host;
	o.port = std::stoi(hp->port);
	o.prefix = u.path.starts_with("/") ? u.path.substr(1) : u.path;
	return sharedStore(u, RedisBackend::open(std::move(o)));
}

} // namespace r3d::backends
