#pragma once

// A read-only MAP_SHARED mapping of a push's source kept from one round to the next, so
// hashing reads the page cache in place (ChunkHasher::hashMapped) instead of copying it
// out with pread. Faulting a fresh mapping in costs more than the copy does (on a VM
// several times more), so the gain is for the rounds after the first one: only the pages
// that the page cache dropped meanwhile fault again. Writes by other programs show
// through (the mapping is of the page cache); a file replaced (another inode) or resized
// is mapped again.

#include <cstddef>
#include <cstdint>

#include <sys/types.h>

#include <r3d/result.hpp>

namespace r3d::sync {

class SourceMapping
{
public:
	SourceMapping() = default;
	~SourceMapping();
	SourceMapping(const SourceMapping &) = delete;
	SourceMapping &operator=(const SourceMapping &) = delete;

	/// Maps the first `size` bytes of `fd`, keeping the mapping when it already is of this
	/// file at this size.
	ResultMsg<void> map(int fd, uint64_t size);
	void unmap();
	const std::byte *data() const { return static_cast<const std::byte *>(addr_); }
	uint64_t size() const { return size_; }

private:
	void *addr_ = nullptr;
	uint64_t size_ = 0;
	dev_t dev_ = 0;
	ino_t ino_ = 0;
};

} // namespace r3d::sync
