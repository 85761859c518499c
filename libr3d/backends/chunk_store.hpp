#pragma once

#include <chrono>
#include <memory>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <thread>

#include <r3d/backend_uri.hpp>
#include <r3d/log.hpp>
#include <r3d/read_writer_at.hpp>

namespace r3d::backends {

/// A device kept as one object per chunk in a key-value or object store (Redis keys, S3
/// objects); a missing object reads as zeros and trimming a chunk deletes it. It takes
/// whole aligned chunks only (preferredChunk()), several per call, which a store may fetch
/// in one batch; the pipeline builder puts an ArbitraryReadWriterAt on top for callers that
/// need any offset.
class ChunkStore : public ReadWriterAt
{
public:
	ChunkStore() = default;

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return size_; }
	Result<void> sync() override { return {}; }
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override { return trim(offset, length); }
	/// Deleting whole chunks is as fast as zeroing gets.
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override { return trim(offset, length); }
	bool canFastZero() const override { return true; }

	uint64_t chunkSize() const { return chunkSize_; }
	uint64_t preferredChunk() const override { return chunkSize_; }

protected:
	struct ChunkRead {
		uint64_t index;
		std::span<std::byte> data; ///< filled with the chunk, zeros when it does not exist
	};
	struct ChunkWrite {
		uint64_t index;
		std::span<const std::byte> data;
	};

	virtual Result<void> getChunks(std::span<const ChunkRead> chunks) = 0;
	virtual Result<void> putChunks(std::span<const ChunkWrite> chunks) = 0;
	virtual Result<void> deleteChunks(std::span<const uint64_t> indices) = 0;

	/// Set once by the store's open(), when the stored geometry is known, before use.
	void setGeometry(uint64_t size, uint64_t chunkSize)
	{
		size_ = size;
		chunkSize_ = chunkSize;
	}

private:
	/// EINVAL unless [offset, offset+length) is whole chunks (the last may be short).
	Result<void> checkAligned(uint64_t offset, uint64_t length, bool forWrite) const;

	uint64_t size_ = 0;
	uint64_t chunkSize_ = 1;
};

/// A store's open() result for the backend factory: the raw store, or its error prefixed by
/// the URI.
template <class Store>
ResultMsg<std::shared_ptr<ReadWriterAt>> sharedStore(const BackendUri &uri, ResultMsg<std::unique_ptr<Store>> store)
{
	if (!store)
		return fail(store.error().code, "'" + uri.text + "': " + store.error().message);
	return std::shared_ptr<ReadWriterAt>(std::move(*store));
}

/// Size and chunk size of a stored device, kept next to its chunks so a later open with
/// other parameters cannot misread them.
struct StoreGeometry {
	uint64_t size = 0;
	uint64_t chunkSize = 0;

	std::string format() const;
	static std::optional<StoreGeometry> parse(const std::string &text);

	/// The geometry to use: the stored one (checked against what the URI asks for), or a
	/// new one from the URI (`size` required). `where` names the store in messages.
	static ResultMsg<StoreGeometry> resolve(const std::optional<std::string> &stored, std::optional<uint64_t> size,
						std::optional<uint64_t> chunkSize, uint64_t defaultChunk,
						const std::string &where);
};

/// Retrying a store operation across outages: transient failures (lost connection, server
/// busy) are tried again with backoff until the deadline, then fail with EIO.
struct RetryPolicy {
	std::chrono::milliseconds deadline{ 60000 };
	std::chrono::milliseconds backoffInitial{ 100 };
	std::chrono::milliseconds backoffMax{ 2000 };
};

/// The URI parameters every chunk store takes besides its address: size, chunk, a
/// concurrency limit (named by the store), timeout and deadline.
struct StoreParams {
	std::optional<uint64_t> size;
	std::optional<uint64_t> chunkSize;
	unsigned concurrency = 16;
	std::chrono::milliseconds timeout{ 30000 };
	RetryPolicy retry;

	/// Refuses parameters other than these and `extra`; parses them over the defaults
	/// already in *this. `concurrency` is capped at `maxConcurrency`.
	ResultMsg<void> parse(const BackendUri &uri, const char *concurrencyKey, unsigned maxConcurrency,
			      const std::set<std::string> &extra = {});
};

/// One attempt's outcome: done, failed for good (errno), or worth another try.
struct Attempt {
	enum Kind { Done, Failed, Transient } kind = Done;
	int error = 0;
	std::string why; ///< for the log line of a transient failure

	static Attempt done() { return {}; }
	static Attempt failed(int error) { return { Failed, error, {} }; }
	static Attempt transient(std::string why) { return { Transient, EIO, std::move(why) }; }
};

/// Runs `attempt` until it is Done or Failed or the deadline passes (EIO); logs the first
/// transient failure and the recovery on `component`'s logger.
template <class Fn>
Result<void> retry(const RetryPolicy &policy, const char *component, const std::string &where, Fn &&attempt)
{
	using Clock = std::chrono::steady_clock;
	auto start = Clock::now();
	auto backoff = policy.backoffInitial;
	bool complained = false;
	for (;;) {
		Attempt a = attempt();
		if (a.kind != Attempt::Transient) {
			if (complained && a.kind == Attempt::Done)
				log::get(component)->info("{}: back after {} ms", where,
							  std::chrono::duration_cast<std::chrono::milliseconds>(
								  Clock::now() - start)
								  .count());
			if (a.kind == Attempt::Failed)
				return unexpected(a.error);
			return {};
		}
		if (!complained) {
			log::get(component)->warn("{}: {}; retrying for up to {} ms", where, a.why,
						  policy.deadline.count());
			complained = true;
		}
		if (Clock::now() - start + backoff > policy.deadline) {
			log::get(component)->error("{}: {}; giving up after {} ms (EIO)", where, a.why,
						   policy.deadline.count());
			return unexpected(EIO);
		}
		std::this_thread::sleep_for(backoff);
		backoff = std::min(backoff * 2, policy.backoffMax);
	}
}

} // namespace r3d::backends
