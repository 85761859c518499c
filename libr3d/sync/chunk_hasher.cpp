#include "sync/chunk_hasher.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include <unistd.h>

#include <fmt/format.h>
#include <xxhash.h>

#include "base/file_io.hpp"
#include "base/thread_pool.hpp"

namespace r3d::sync {

namespace {

/// Bytes one job reads at a time: several small chunks per pread, one large chunk.
constexpr uint64_t kReadBatch = 4ull << 20;

} // namespace

ChunkHash hashBytes(std::span<const std::byte> bytes)
{
	XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
	return ChunkHash{ h.high64, h.low64 };
}

void putHash(const ChunkHash &h, std::byte *out)
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH128_hash_t{ h.low, h.high });
	std::memcpy(out, c.digest, kHashBytes);
}

ChunkHash getHash(const std::byte *in)
{
	XXH128_canonical_t c;
	std::memcpy(c.digest, in, kHashBytes);
	XXH128_hash_t h = XXH128_hashFromCanonical(&c);
	return ChunkHash{ h.high64, h.low64 };
}

ResultMsg<std::vector<ChunkHash>> ChunkHasher::hash(const ReadFn &read, uint64_t size) const
{
	if (chunk_ == 0)
		return fail(EINVAL, "chunk size 0");
	const uint64_t count = (size + chunk_ - 1) / chunk_;
	std::vector<ChunkHash> out(count);
	if (count == 0)
		return out;
	const uint64_t perBatch = std::max<uint64_t>(1, kReadBatch / chunk_);
	// Slices of whole batches; a few per thread so a slow slice does not hold the rest up.
	const unsigned threads = pool_ ? static_cast<unsigned>(pool_->size()) : 1;
	const uint64_t batches = (count + perBatch - 1) / perBatch;
	const uint64_t slices = std::min<uint64_t>(batches, threads * 4ull);
	const uint64_t batchesPerSlice = (batches + slices - 1) / slices;

	std::mutex mutex;
	std::condition_variable done;
	uint64_t pending = 0;
	std::optional<Error> firstError;

	auto runSlice = [&](uint64_t firstBatch, uint64_t endBatch) {
		std::vector<std::byte> buf(static_cast<size_t>(perBatch * chunk_));
		for (uint64_t b = firstBatch; b < endBatch; ++b) {
			uint64_t first = b * perBatch;
			uint64_t end = std::min(count, first + perBatch);
			uint64_t offset = first * chunk_;
			uint64_t length = std::min(size, end * chunk_) - offset;
			auto ok = read(std::span(buf.data(), static_cast<size_t>(length)), offset);
			if (!ok) {
				std::lock_guard lock(mutex);
				if (!firstError)
					firstError = ok.error();
				return;
			}
			for (uint64_t c = first; c < end; ++c) {
				uint64_t at = (c - first) * chunk_;
				uint64_t len = std::min(chunk_, length - at);
				out[c] = hashBytes(std::span<const std::byte>(buf.data() + at, static_cast<size_t>(len)));
			}
		}
	};

	if (!pool_ || slices == 1) {
		runSlice(0, batches);
	} else {
		pending = slices;
		for (uint64_t s = 0; s < slices; ++s) {
			uint64_t first = s * batchesPerSlice, end = std::min(batches, first + batchesPerSlice);
			pool_->post([&, first, end] {
				runSlice(first, end);
				std::lock_guard lock(mutex);
				if (--pending == 0)
					done.notify_one();
			});
		}
		std::unique_lock lock(mutex);
		done.wait(lock, [&] { return pending == 0; });
	}
	if (firstError)
		return unexpectedOf(*firstError);
	return out;
}

ResultMsg<std::vector<ChunkHash>> ChunkHasher::hash(ReadWriterAt &source) const
{
	return hash(
		[&source](std::span<std::byte> buf, uint64_t offset) -> ResultMsg<void> {
			auto ok = source.readAt(buf, offset);
			if (!ok)
				return fail(ok.error(), fmt::format("reading {} bytes at {}: {}", buf.size(), offset,
								    ok.error().message()));
			return {};
		},
		source.size());
}

ResultMsg<void> readZeroPadded(int fd, std::span<std::byte> buf, uint64_t offset)
{
	auto n = preadFull(fd, buf, offset);
	if (!n)
		return fail(n.error(), fmt::format("pread at {}: {}", offset, n.error().message()));
	std::memset(buf.data() + *n, 0, buf.size() - *n);
	return {};
}

ResultMsg<std::vector<ChunkHash>> ChunkHasher::hashFile(int fd, uint64_t size) const
{
	return hash(
		[fd](std::span<std::byte> buf, uint64_t offset) { return readZeroPadded(fd, buf, offset); },
		size);
}

} // namespace r3d::sync
