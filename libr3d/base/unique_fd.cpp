#include <r3d/unique_fd.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace r3d {

void setCloexec(int fd)
{
	int flags = ::fcntl(fd, F_GETFD);
	if (flags >= 0)
		::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

void UniqueFd::reset(int fd)
{
	if (fd_ >= 0)
		::close(fd_);
	fd_ = fd;
}

UniqueFd UniqueFd::dup() const
{
	return UniqueFd(::fcntl(fd_, F_DUPFD_CLOEXEC, 0));
}

} // namespace r3d
