#pragma once

// The stage that makes a region read-only for good at a migration handover: on the seeder
// after the commit (it never writes again), on a leecher that ended as a read-only copy.
// Reads pass; every call that changes data fails with EROFS once sealed. Sealing is
// one-way. It sits under the LockableReadWriterAt, so writers the lock held back fail with
// EROFS when it opens instead of landing.

#include <atomic>

#include "stages/forwarding_read_writer_at.hpp"

namespace r3d::migration {

class WriteFence final : public stages::ForwardingReadWriterAt
{
public:
	using ForwardingReadWriterAt::ForwardingReadWriterAt;

	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;

	void seal() { sealed_.store(true, std::memory_order_release); }
	bool sealed() const { return sealed_.load(std::memory_order_acquire); }

private:
	std::atomic<bool> sealed_{ false };
};

} // namespace r3d::migration
