#pragma once

#include "stages/forwarding_read_writer_at.hpp"

namespace r3d::stages {

/// A stage that works in chunks of a fixed size (the last chunk of a device may be short).
class ChunkStage : public ForwardingReadWriterAt
{
public:
	ChunkStage(std::shared_ptr<ReadWriterAt> next, uint64_t chunkSize)
		: ForwardingReadWriterAt(std::move(next)), chunkSize_(chunkSize)
	{
	}

	uint64_t chunkSize() const { return chunkSize_; }

protected:
	uint64_t chunkSize_;
};

} // namespace r3d::stages
