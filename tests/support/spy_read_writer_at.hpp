#pragma once

#include <mutex>
#include <vector>

#include "stages/forwarding_read_writer_at.hpp"

namespace r3test {

/// Records every read and write that reaches the stage below, with the caller's buffer
/// address, so tests can see how a stage above split the I/O.
class SpyReadWriterAt final : public r3d::stages::ForwardingReadWriterAt
{
public:
	struct Call {
		char op; // 'r' or 'w'
		uint64_t offset;
		uint64_t length;
		const void *buffer;
	};

	using ForwardingReadWriterAt::ForwardingReadWriterAt;

	r3d::Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override
	{
		record('r', offset, buf.size(), buf.data());
		return next_->readAt(buf, offset);
	}
	r3d::Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override
	{
		record('w', offset, buf.size(), buf.data());
		return next_->writeAt(buf, offset);
	}

	std::vector<Call> calls() const
	{
		std::lock_guard lock(mutex_);
		return calls_;
	}
	void reset()
	{
		std::lock_guard lock(mutex_);
		calls_.clear();
	}

private:
	void record(char op, uint64_t offset, uint64_t length, const void *buffer)
	{
		std::lock_guard lock(mutex_);
		calls_.push_back(Call{ op, offset, length, buffer });
	}

	mutable std::mutex mutex_;
	std::vector<Call> calls_;
};

} // namespace r3test
