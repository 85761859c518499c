#include "migration/write_fence.hpp"

namespace r3d::migration {

Result<void> WriteFence::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	if (sealed())
		return unexpected(EROFS);
	return next_->writeAt(buf, offset);
}

Result<void> WriteFence::trim(uint64_t offset, uint64_t length)
{
	if (sealed())
		return unexpected(EROFS);
	return next_->trim(offset, length);
}

Result<void> WriteFence::writeZeroes(uint64_t offset, uint64_t length)
{
	if (sealed())
		return unexpected(EROFS);
	return next_->writeZeroes(offset, length);
}

Result<void> WriteFence::writeZeroesFast(uint64_t offset, uint64_t length)
{
	if (sealed())
		return unexpected(EROFS);
	return next_->writeZeroesFast(offset, length);
}

} // namespace r3d::migration
