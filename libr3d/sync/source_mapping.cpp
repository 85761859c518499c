#include "sync/source_mapping.hpp"

#include <cstring>

#include <sys/mman.h>
#include <sys/stat.h>

#include <fmt/format.h>

namespace r3d::sync {

SourceMapping::~SourceMapping()
{
	unmap();
}

void SourceMapping::unmap()
{
	if (addr_)
		::munmap(addr_, static_cast<size_t>(size_));
	addr_ = nullptr;
	size_ = 0;
}

ResultMsg<void> SourceMapping::map(int fd, uint64_t size)
{
	struct stat st;
	if (::fstat(fd, &st) != 0)
		return fail(errno, fmt::format("stat: {}", std::strerror(errno)));
	if (addr_ && size_ == size && dev_ == st.st_dev && ino_ == st.st_ino)
		return {};
	unmap();
	if (size == 0)
		return {};
	void *addr = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED)
		return fail(errno, fmt::format("mmap of {} bytes: {}", size, std::strerror(errno)));
	addr_ = addr;
	size_ = size;
	dev_ = st.st_dev;
	ino_ = st.st_ino;
	return {};
}

} // namespace r3d::sync
