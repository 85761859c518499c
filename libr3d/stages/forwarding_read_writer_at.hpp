#pragma once

#include <memory>

#include <r3d/read_writer_at.hpp>

namespace r3d::stages {

/// Base of every pipeline stage: forwards each call to `next`, so a stage overrides only
/// what it changes (the nbdkit filter model).
class ForwardingReadWriterAt : public ReadWriterAt
{
public:
	explicit ForwardingReadWriterAt(std::shared_ptr<ReadWriterAt> next) : next_(std::move(next)) {}

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override { return next_->readAt(buf, offset); }
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		return next_->writeAt(buf, offset);
	}
	uint64_t size() const override { return next_->size(); }
	Result<void> sync() override { return next_->sync(); }
	Result<void> trim(uint64_t offset, uint64_t length) override { return next_->trim(offset, length); }
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override
	{
		return next_->writeZeroes(offset, length);
	}
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override
	{
		return next_->writeZeroesFast(offset, length);
	}
	bool canFastZero() const override { return next_->canFastZero(); }
	Result<void> cache(uint64_t offset, uint64_t length) override { return next_->cache(offset, length); }
	Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override
	{
		return next_->extents(offset, length);
	}
	bool isFast() const override { return next_->isFast(); }
	uint64_t preferredChunk() const override { return next_->preferredChunk(); }

	const std::shared_ptr<ReadWriterAt> &next() const { return next_; }

protected:
	std::shared_ptr<ReadWriterAt> next_;
};

} // namespace r3d::stages
