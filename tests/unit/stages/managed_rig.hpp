#pragma once

// Doubles and a rig for the managed-region unit tests (chunk state, journal, puller, pusher,
// region): a remote that counts what reaches it and can go down and come back, a bounded
// poll, and the stages of one region (SyncContext, Puller, Pusher, SyncedReadWriterAt) over
// a remote and a memory cache, without a journal.

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/memory_backend.hpp"
#include "stages/chunk_geometry.hpp"
#include "stages/forwarding_read_writer_at.hpp"
#include "stages/puller.hpp"
#include "stages/pusher.hpp"
#include "stages/sync_context.hpp"
#include "stages/synced_read_writer_at.hpp"
#include "test_support.hpp"

// Byte buffers print as their size, first bytes and a hash, not as megabytes of numbers.
namespace Catch {
template <>
struct StringMaker<std::vector<std::byte>> {
	static std::string convert(const std::vector<std::byte> &v)
	{
		uint64_t h = 1469598103934665603ull;
		for (auto b : v)
			h = (h ^ static_cast<uint8_t>(b)) * 1099511628211ull;
		std::string out = std::to_string(v.size()) + " bytes [";
		for (size_t i = 0; i < v.size() && i < 8; ++i)
			out += (i ? " " : "") + std::to_string(static_cast<unsigned>(v[i]));
		char hash[32];
		std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(h));
		return out + (v.size() > 8 ? " ...] fnv " : "] fnv ") + hash;
	}
};
} // namespace Catch

namespace r3test {

/// A RAM disk of `size` bytes; with `seed` != 0 filled with pattern(size, seed).
inline std::shared_ptr<r3d::ReadWriterAt> memoryDisk(uint64_t size, uint32_t seed = 0)
{
	std::shared_ptr<r3d::ReadWriterAt> m(std::move(r3d::backends::MemoryBackend::create(size).value()));
	if (seed != 0) {
		auto data = pattern(size, seed);
		REQUIRE(m->writeAt(data, 0));
	}
	return m;
}

/// All of [offset, offset+length) of `rw`, which must be readable.
inline std::vector<std::byte> readRange(r3d::ReadWriterAt &rw, uint64_t offset, uint64_t length)
{
	std::vector<std::byte> out(length);
	auto r = rw.readAt(out, offset);
	REQUIRE(r);
	return out;
}

inline std::vector<std::byte> readWhole(r3d::ReadWriterAt &rw)
{
	return readRange(rw, 0, rw.size());
}

/// Polls `done` every few milliseconds until it holds or `limit` passes. The limit is a
/// bound against a hang, far above what the condition needs, never a timing assertion.
inline bool eventually(const std::function<bool()> &done, std::chrono::milliseconds limit = std::chrono::seconds(30))
{
	auto until = std::chrono::steady_clock::now() + limit;
	while (!done()) {
		if (std::chrono::steady_clock::now() > until)
			return false;
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
	return true;
}

/// A remote stage that counts and records what reaches the backend below it, and can be
/// taken down: between goDown(err) and comeUp() every read, write and sync fails with err
/// (not counted). It says it blocks (isFast() false), like a network backend.
class CountingRemote final : public r3d::stages::ForwardingReadWriterAt
{
public:
	struct Call {
		char op; // 'r' or 'w'
		uint64_t offset;
		uint64_t length;
	};

	using ForwardingReadWriterAt::ForwardingReadWriterAt;

	r3d::Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override
	{
		if (int e = down_.load())
			return failed(e);
		record('r', offset, buf.size());
		return next_->readAt(buf, offset);
	}
	r3d::Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		if (int e = down_.load())
			return failed(e);
		record('w', offset, buf.size());
		return next_->writeAt(buf, offset);
	}
	r3d::Result<void> sync() override
	{
		if (int e = down_.load())
			return failed(e);
		return next_->sync();
	}
	bool isFast() const override { return false; }

	void goDown(int error = EIO) { down_.store(error); }
	void comeUp() { down_.store(0); }
	/// Calls refused while down.
	uint64_t refused() const { return refused_.load(); }

	std::vector<Call> calls(char op) const
	{
		std::lock_guard lock(mutex_);
		std::vector<Call> out;
		for (const auto &c : calls_)
			if (c.op == op)
				out.push_back(c);
		return out;
	}
	size_t count(char op) const { return calls(op).size(); }
	/// Calls of `op` whose range holds byte `offset`.
	size_t covering(char op, uint64_t offset) const
	{
		size_t n = 0;
		for (const auto &c : calls(op))
			if (offset >= c.offset && offset < c.offset + c.length)
				++n;
		return n;
	}
	void reset()
	{
		std::lock_guard lock(mutex_);
		calls_.clear();
	}

private:
	r3d::Result<void> failed(int e)
	{
		refused_++;
		return r3d::unexpected(e);
	}
	void record(char op, uint64_t offset, uint64_t length)
	{
		std::lock_guard lock(mutex_);
		calls_.push_back({ op, offset, length });
	}

	std::atomic<int> down_{ 0 };
	std::atomic<uint64_t> refused_{ 0 };
	mutable std::mutex mutex_;
	std::vector<Call> calls_;
};

/// The stages of one managed region over `remote` with a memory cache and no journal, as
/// ManagedRegion assembles them. Workers are not started: call puller.start() /
/// pusher.start() where a case wants them.
struct Rig {
	Rig(std::shared_ptr<r3d::ReadWriterAt> remote, uint64_t chunk, r3d::stages::PullerOptions po = {},
	    r3d::stages::PusherOptions pu = {})
		: ctx(remote, { remote->size(), chunk }), puller(withCache(ctx), std::move(po)), pusher(ctx, pu),
		  top(ctx, puller, pusher)
	{
	}
	~Rig()
	{
		puller.stop();
		pusher.stop();
	}

	r3d::stages::ChunkPhase phase(uint64_t index) const { return ctx.state.load(index).phase(); }

	r3d::stages::SyncContext ctx;
	r3d::stages::Puller puller;
	r3d::stages::Pusher pusher;
	r3d::stages::SyncedReadWriterAt top;

private:
	static r3d::stages::SyncContext &withCache(r3d::stages::SyncContext &c)
	{
		c.cache = memoryDisk(c.geometry.size);
		return c;
	}
};

} // namespace r3test
