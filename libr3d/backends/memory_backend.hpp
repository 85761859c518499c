#pragma once

#include <memory>

#include <r3d/read_writer_at.hpp>

#include "stages/bitmap.hpp"

namespace r3d::backends {

/// A RAM disk. The whole size is reserved as address space (MAP_NORESERVE), so pages cost
/// RAM only once written; trim and zeroing give whole pages back to the kernel. Writes are
/// recorded at 64 KiB granularity so extents() reports the untouched parts as holes.
class MemoryBackend final : public ReadWriterAt
{
public:
	static constexpr uint64_t kGranule = 64 * 1024;

	static ResultMsg<std::unique_ptr<MemoryBackend>> create(uint64_t size);
	~MemoryBackend() override;
	MemoryBackend(const MemoryBackend &) = delete;
	MemoryBackend &operator=(const MemoryBackend &) = delete;

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return size_; }
	Result<void> sync() override { return {}; }
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override { return writeZeroes(offset, length); }
	bool canFastZero() const override { return true; }
	Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override;
	bool isFast() const override { return true; }

private:
	MemoryBackend(std::byte *base, uint64_t size);

	std::byte *base_;
	uint64_t size_;
	stages::Bitmap allocated_;
};

} // namespace r3d::backends
