#include "base/file_io.hpp"

#include <unistd.h>

namespace r3d {

Result<size_t> preadFull(int fd, std::span<std::byte> buf, uint64_t offset)
{
	size_t done = 0;
	while (done < buf.size()) {
		ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return unexpected(errno);
		if (n == 0)
			break;
		done += static_cast<size_t>(n);
	}
	return done;
}

Result<void> pwriteFull(int fd, std::span<const std::byte> buf, uint64_t offset)
{
	size_t done = 0;
	while (done < buf.size()) {
		ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return unexpected(errno);
		done += static_cast<size_t>(n);
	}
	return {};
}

} // namespace r3d
