#include "backends/memory_backend.hpp"

#include <cstring>

#include <sys/mman.h>

#include <fmt/format.h>

#include <r3d/size.hpp>

namespace r3d::backends {

ResultMsg<std::unique_ptr<MemoryBackend>> MemoryBackend::create(uint64_t size)
{
	if (size == 0)
		return fail(EINVAL, "memory: size must be greater than 0");
	if (size > uint64_t{ 1 } << 46)
		return fail(EFBIG, fmt::format("memory: {} does not fit in this address space (limit 64 TiB)",
					       formatSize(size)));
	void *p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		int err = errno;
		return fail(err, fmt::format("memory: cannot reserve {}: {}", formatSize(size), std::strerror(err)));
	}
	return std::unique_ptr<MemoryBackend>(new MemoryBackend(static_cast<std::byte *>(p), size));
}

MemoryBackend::MemoryBackend(std::byte *base, uint64_t size)
	: base_(base), size_(size), allocated_((size + kGranule - 1) / kGranule)
{
}

MemoryBackend::~MemoryBackend()
{
	::munmap(base_, size_);
}

Result<void> MemoryBackend::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, false));
	std::memcpy(buf.data(), base_ + offset, buf.size());
	return {};
}

Result<void> MemoryBackend::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, true));
	if (buf.empty())
		return {};
	std::memcpy(base_ + offset, buf.data(), buf.size());
	allocated_.setRange(offset / kGranule, (offset + buf.size() - 1) / kGranule);
	return {};
}

Result<void> MemoryBackend::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size_, true));
	// Whole granules go back to the kernel (MADV_DONTNEED on private anonymous memory
	// reads back as zeros); the partial edges are cleared by hand.
	uint64_t first = (offset + kGranule - 1) / kGranule * kGranule;
	uint64_t last = (offset + length) / kGranule * kGranule;
	if (first >= last) {
		std::memset(base_ + offset, 0, length);
		return {};
	}
	std::memset(base_ + offset, 0, first - offset);
	std::memset(base_ + last, 0, offset + length - last);
	if (::madvise(base_ + first, last - first, MADV_DONTNEED) != 0)
		std::memset(base_ + first, 0, last - first);
	for (uint64_t g = first / kGranule; g < last / kGranule; ++g)
		allocated_.clear(g);
	return {};
}

Result<void> MemoryBackend::trim(uint64_t offset, uint64_t length)
{
	return writeZeroes(offset, length);
}

Result<std::vector<Extent>> MemoryBackend::extents(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size_, false));
	std::vector<Extent> out;
	uint64_t pos = offset;
	uint64_t end = offset + length;
	while (pos < end) {
		uint64_t g = pos / kGranule;
		bool hole = !allocated_.test(g);
		uint64_t next = (g + 1) * kGranule;
		while (next < end && !allocated_.test(next / kGranule) == hole)
			next += kGranule;
		uint64_t n = std::min(next, end) - pos;
		appendExtent(out, Extent{ n, hole, hole });
		pos += n;
	}
	return out;
}

} // namespace r3d::backends
