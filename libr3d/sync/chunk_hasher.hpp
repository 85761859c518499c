#pragma once

// XXH3-128 of every chunk of a source, computed in parallel slices on a ThreadPool: the
// sender compares them with the last synced ones to find what changed, the receiver sends
// its copy's on first contact. A file that changes while it is hashed gives a mix of old
// and new chunks; the next round sees the rest.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>

namespace r3d {
class ThreadPool;
}

namespace r3d::sync {

struct ChunkHash {
	uint64_t high = 0;
	uint64_t low = 0;
	bool operator==(const ChunkHash &) const = default;
};

/// Bytes of a hash on the wire: high then low, big-endian (XXH128_canonical_t).
inline constexpr size_t kHashBytes = 16;

ChunkHash hashBytes(std::span<const std::byte> bytes);
void putHash(const ChunkHash &h, std::byte *out);
ChunkHash getHash(const std::byte *in);

/// Reads `buf` at `offset` of a file that may have shrunk since its size was taken: what
/// lies past its end reads as zeros (the next round sees the new size).
ResultMsg<void> readZeroPadded(int fd, std::span<std::byte> buf, uint64_t offset);

/// Where a hash() spent its time, for benchmarks and reports.
struct HashStats {
	double cpuSeconds = 0; ///< CPU time of the hashing threads (reads included)
	unsigned threads = 0;  ///< threads that hashed
};

class ChunkHasher
{
public:
	/// Reads [offset, offset + buf.size()) of the source.
	using ReadFn = std::function<ResultMsg<void>(std::span<std::byte> buf, uint64_t offset)>;

	/// `pool` may be null: hash on the caller's thread.
	ChunkHasher(ThreadPool *pool, uint64_t chunk) : pool_(pool), chunk_(chunk) {}

	/// Hashes of the ceil(size / chunk) chunks of [0, size); the last one may be short.
	ResultMsg<std::vector<ChunkHash>> hash(const ReadFn &read, uint64_t size, HashStats *stats = nullptr) const;
	ResultMsg<std::vector<ChunkHash>> hash(ReadWriterAt &source) const;
	/// pread(2) of an open file of `size` bytes, in 4 MiB reads: of the page cache that is
	/// a copy, but a cheaper one than faulting in a fresh mapping of it (docs/sync.md).
	ResultMsg<std::vector<ChunkHash>> hashFile(int fd, uint64_t size, HashStats *stats = nullptr) const;
	/// The same from `mapped`, a mapping of `fd` kept from earlier rounds (SourceMapping):
	/// no copy at all. A chunk whose pages vanish meanwhile (the file was truncated: SIGBUS)
	/// is read with pread instead, zero-padded.
	ResultMsg<std::vector<ChunkHash>> hashMapped(const std::byte *mapped, int fd, uint64_t size,
						     HashStats *stats = nullptr) const;

	uint64_t chunk() const { return chunk_; }

private:
	/// Hashes the chunks [first, end) at `offset`, `length` bytes; `scratch` holds a batch.
	using BatchFn = std::function<ResultMsg<void>(uint64_t first, uint64_t end, uint64_t offset, uint64_t length,
						      std::byte *scratch, std::vector<ChunkHash> &out)>;
	ResultMsg<std::vector<ChunkHash>> run(uint64_t size, HashStats *stats, bool scratch, const BatchFn &batch) const;

	ThreadPool *pool_;
	uint64_t chunk_;
};

} // namespace r3d::sync
