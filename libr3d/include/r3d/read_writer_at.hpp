#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <r3d/result.hpp>

namespace r3d {

/// A run of the device with the same allocation state, as NBD's base:allocation reports it.
struct Extent {
	uint64_t length = 0;
	bool hole = false; ///< not allocated in the backend
	bool zero = false; ///< reads as zeros
};

/// The interface every backend and every pipeline stage implements.
///
/// Stages wrap a `next` ReadWriterAt, like nbdkit filters. Every call either transfers the
/// whole range or fails with an errno: there are no short reads or writes. A range that
/// does not fit inside size() fails with EINVAL (reads) or ENOSPC (writes) and touches
/// nothing. Implementations must be safe for concurrent calls from several threads.
class ReadWriterAt
{
public:
	virtual ~ReadWriterAt() = default;

	virtual Result<void> readAt(std::span<std::byte> buf, uint64_t offset) = 0;
	virtual Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) = 0;
	virtual uint64_t size() const = 0;
	/// Make every acknowledged write durable in the backend.
	virtual Result<void> sync() = 0;

	/// Discard a range; afterwards it reads as zeros. Default: writeZeroes().
	virtual Result<void> trim(uint64_t offset, uint64_t length);
	/// Zero a range. Default: writes from a shared zero buffer.
	virtual Result<void> writeZeroes(uint64_t offset, uint64_t length);
	/// Zero a range only if that is cheaper than writing zeros (NBD FAST_ZERO); fails with
	/// ENOTSUP instead of falling back to writing. Default: ENOTSUP.
	virtual Result<void> writeZeroesFast(uint64_t offset, uint64_t length);
	/// Whether writeZeroesFast() is implemented (advertised as NBD_FLAG_SEND_FAST_ZERO).
	virtual bool canFastZero() const { return false; }
	/// Advise that a range will be read soon (NBD CACHE). Default: nothing to do.
	virtual Result<void> cache(uint64_t offset, uint64_t length);
	/// Allocation map of [offset, offset+length); the extents cover at least one byte and
	/// at most the range. Default: one allocated extent over the whole range.
	virtual Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length);
	/// Whether calls are cheap enough (memcpy-like, never blocking on I/O) to run on a
	/// network thread instead of a worker pool.
	virtual bool isFast() const { return false; }
	/// The granularity the backend is read and written at: 0 when any offset and length
	/// work; otherwise every call must cover whole chunks of this size (several in a row
	/// are fine; the device's last chunk may be short). The pipeline builder puts an
	/// ArbitraryReadWriterAt in front of such a backend for callers that need any offset.
	virtual uint64_t preferredChunk() const { return 0; }
};

/// Appends `e` to an allocation map, merging it into the last extent when their flags match.
void appendExtent(std::vector<Extent> &extents, const Extent &e);

/// Checks that [offset, offset+length) lies inside a device of `size` bytes.
/// Returns EINVAL for reads and ENOSPC for writes, as the NBD protocol asks.
Result<void> checkRange(uint64_t offset, uint64_t length, uint64_t size, bool forWrite);

} // namespace r3d
