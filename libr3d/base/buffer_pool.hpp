#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace r3d {

/// Reusable byte vectors, so steady-state request handling does not allocate. A leased
/// vector keeps the size it was returned with (shrinking with resize() is free; growing
/// fills only the new part). Vectors above `maxPooledCapacity` are freed instead of kept,
/// so a burst of huge requests does not pin memory.
class BufferPool
{
public:
	class Lease
	{
	public:
		Lease() = default;
		Lease(Lease &&other) noexcept : pool_(other.pool_), bytes_(std::move(other.bytes_))
		{
			other.pool_ = nullptr;
		}
		Lease &operator=(Lease &&other) noexcept;
		Lease(const Lease &) = delete;
		Lease &operator=(const Lease &) = delete;
		~Lease();

		std::vector<std::byte> &bytes() { return bytes_; }

	private:
		friend class BufferPool;
		Lease(BufferPool *pool, std::vector<std::byte> bytes) : pool_(pool), bytes_(std::move(bytes)) {}
		BufferPool *pool_ = nullptr;
		std::vector<std::byte> bytes_;
	};

	BufferPool(size_t maxBuffers, size_t maxPooledCapacity)
		: maxBuffers_(maxBuffers), maxPooledCapacity_(maxPooledCapacity)
	{
	}

	/// A vector with room for at least `capacity` bytes.
	Lease acquire(size_t capacity);

private:
	void release(std::vector<std::byte> bytes);

	size_t maxBuffers_;
	size_t maxPooledCapacity_;
	std::mutex mutex_;
	std::vector<std::vector<std::byte>> free_;
};

} // namespace r3d
