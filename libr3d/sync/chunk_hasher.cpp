#include "sync/chunk_hasher.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>
#include <xxhash.h>

#include "base/file_io.hpp"
#include "base/thread_pool.hpp"

namespace r3d::sync {

namespace {

/// Bytes one job reads at a time: several small chunks per pread, one large chunk.
constexpr uint64_t kReadBatch = 4ull << 20;

double threadCpuSeconds()
{
	timespec ts{};
	::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Hashing from a mapping: a page past the end of a file truncated meanwhile raises SIGBUS.
// The guard turns that into a failed hashGuarded() on the thread that hashed, and leaves
// every other SIGBUS to whoever handled it before.
thread_local sigjmp_buf *guardJump = nullptr;
struct sigaction previousBus;

void onBus(int sig, siginfo_t *info, void *context)
{
	if (guardJump)
		siglongjmp(*guardJump, 1);
	if (previousBus.sa_flags & SA_SIGINFO) {
		if (previousBus.sa_sigaction) {
			previousBus.sa_sigaction(sig, info, context);
			return;
		}
	} else if (previousBus.sa_handler != SIG_DFL && previousBus.sa_handler != SIG_IGN) {
		previousBus.sa_handler(sig);
		return;
	}
	// Returning runs the faulting access again, now into the default action.
	::signal(SIGBUS, SIG_DFL);
}

void installBusGuard()
{
	static std::once_flag once;
	std::call_once(once, [] {
		struct sigaction sa {};
		sa.sa_sigaction = onBus;
		// NODEFER: a jump out of the handler leaves SIGBUS unblocked without saving the mask
		// at every sigsetjmp (a system call per chunk).
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		::sigaction(SIGBUS, &sa, &previousBus);
	});
}

bool hashGuarded(const std::byte *data, size_t length, ChunkHash &out)
{
	sigjmp_buf jump;
	if (sigsetjmp(jump, 0)) {
		guardJump = nullptr;
		return false;
	}
	guardJump = &jump;
	out = hashBytes(std::span<const std::byte>(data, length));
	guardJump = nullptr;
	return true;
}

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

ResultMsg<std::vector<ChunkHash>> ChunkHasher::run(uint64_t size, HashStats *stats, bool scratch,
						   const BatchFn &batch) const
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
	double cpuSeconds = 0;
	std::set<std::thread::id> hashers;

	auto hashSlice = [&](uint64_t firstBatch, uint64_t endBatch) {
		// Not value-initialized: every byte is read into before it is hashed.
		std::unique_ptr<std::byte[]> buf(scratch ? new std::byte[static_cast<size_t>(perBatch * chunk_)] : nullptr);
		for (uint64_t b = firstBatch; b < endBatch; ++b) {
			uint64_t first = b * perBatch;
			uint64_t end = std::min(count, first + perBatch);
			uint64_t offset = first * chunk_;
			uint64_t length = std::min(size, end * chunk_) - offset;
			auto ok = batch(first, end, offset, length, buf.get(), out);
			if (!ok) {
				std::lock_guard lock(mutex);
				if (!firstError)
					firstError = ok.error();
				return;
			}
		}
	};
	auto runSlice = [&](uint64_t firstBatch, uint64_t endBatch) {
		const double cpuStart = threadCpuSeconds();
		hashSlice(firstBatch, endBatch);
		std::lock_guard lock(mutex);
		cpuSeconds += threadCpuSeconds() - cpuStart;
		hashers.insert(std::this_thread::get_id());
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
	if (stats) {
		stats->cpuSeconds = cpuSeconds;
		stats->threads = static_cast<unsigned>(hashers.size());
	}
	if (firstError)
		return unexpectedOf(*firstError);
	return out;
}

ResultMsg<std::vector<ChunkHash>> ChunkHasher::hash(const ReadFn &read, uint64_t size, HashStats *stats) const
{
	const uint64_t chunk = chunk_;
	return run(size, stats, true,
		   [&read, chunk](uint64_t first, uint64_t end, uint64_t offset, uint64_t length, std::byte *buf,
				  std::vector<ChunkHash> &out) -> ResultMsg<void> {
			   if (auto ok = read(std::span(buf, static_cast<size_t>(length)), offset); !ok)
				   return ok;
			   for (uint64_t c = first; c < end; ++c) {
				   uint64_t at = (c - first) * chunk;
				   uint64_t len = std::min(chunk, length - at);
				   out[c] = hashBytes(std::span<const std::byte>(buf + at, static_cast<size_t>(len)));
			   }
			   return {};
		   });
}

ResultMsg<std::vector<ChunkHash>> ChunkHasher::hashMapped(const std::byte *mapped, int fd, uint64_t size,
							  HashStats *stats) const
{
	installBusGuard();
	const uint64_t chunk = chunk_;
	return run(size, stats, false,
		   [mapped, fd, chunk, size](uint64_t first, uint64_t end, uint64_t, uint64_t, std::byte *,
					     std::vector<ChunkHash> &out) -> ResultMsg<void> {
			   for (uint64_t c = first; c < end; ++c) {
				   uint64_t at = c * chunk;
				   size_t len = static_cast<size_t>(std::min(chunk, size - at));
				   if (hashGuarded(mapped + at, len, out[c]))
					   continue;
				   // Truncated under the mapping: what is left of it reads as zeros.
				   std::vector<std::byte> buf(len);
				   if (auto ok = readZeroPadded(fd, buf, at); !ok)
					   return ok;
				   out[c] = hashBytes(buf);
			   }
			   return {};
		   });
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

ResultMsg<std::vector<ChunkHash>> ChunkHasher::hashFile(int fd, uint64_t size, HashStats *stats) const
{
	// Each thread reads its slice front to back: a file not in the page cache gets the
	// larger readahead window (a hint; its failure changes nothing).
	(void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return hash([fd](std::span<std::byte> buf, uint64_t offset) { return readZeroPadded(fd, buf, offset); }, size,
		    stats);
}

} // namespace r3d::sync
