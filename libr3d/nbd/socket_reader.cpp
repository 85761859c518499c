#include "nbd/socket_reader.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>

namespace r3d::nbd {

SocketReader::SocketReader(int fd, size_t capacity, std::function<void()> beforeBlock)
	: fd_(fd), buf_(capacity), beforeBlock_(std::move(beforeBlock))
{
}

Result<size_t> SocketReader::receive(std::byte *dst, size_t len)
{
	for (;;) {
		// Take what is already there without flushing; flush only before really waiting.
		ssize_t n = ::recv(fd_, dst, len, MSG_DONTWAIT);
		if (n >= 0)
			return static_cast<size_t>(n);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return unexpected(errno);
		if (beforeBlock_)
			beforeBlock_();
		n = ::recv(fd_, dst, len, 0);
		if (n >= 0)
			return static_cast<size_t>(n);
		if (errno == EINTR)
			continue;
		// SO_RCVTIMEO expiry during the handshake shows up as EAGAIN.
		return unexpected(errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno);
	}
}

Result<bool> SocketReader::fill(size_t n)
{
	if (available() >= n)
		return true;
	if (start_ + n > buf_.size()) {
		std::memmove(buf_.data(), buf_.data() + start_, available());
		end_ -= start_;
		start_ = 0;
	}
	while (available() < n) {
		auto got = receive(buf_.data() + end_, buf_.size() - end_);
		if (!got)
			return unexpected(got.error());
		if (*got == 0)
			return false;
		end_ += *got;
	}
	return true;
}

Result<bool> SocketReader::read(std::span<std::byte> dst)
{
	size_t have = std::min(available(), dst.size());
	if (have > 0)
		std::memcpy(dst.data(), data(), have);
	consume(have);
	size_t done = have;
	while (done < dst.size()) {
		auto got = receive(dst.data() + done, dst.size() - done);
		if (!got)
			return unexpected(got.error());
		if (*got == 0)
			return false;
		done += *got;
	}
	return true;
}

Result<bool> SocketReader::discard(uint64_t n)
{
	while (n > 0) {
		if (available() == 0) {
			start_ = end_ = 0;
			auto got = receive(buf_.data(), buf_.size());
			if (!got)
				return unexpected(got.error());
			if (*got == 0)
				return false;
			end_ = *got;
		}
		size_t take = static_cast<size_t>(std::min<uint64_t>(n, available()));
		consume(take);
		n -= take;
	}
	return true;
}

Result<void> sendAll(int fd, iovec *iov, int count)
{
	while (count > 0) {
		msghdr msg{};
		msg.msg_iov = iov;
		msg.msg_iovlen = static_cast<size_t>(std::min(count, IOV_MAX));
		ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return unexpected(errno);
		}
		auto left = static_cast<size_t>(n);
		while (count > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			++iov;
			--count;
		}
		if (count > 0) {
			iov->iov_base = static_cast<char *>(iov->iov_base) + left;
			iov->iov_len -= left;
		}
	}
	return {};
}

Result<void> sendAll(int fd, std::span<const std::byte> bytes)
{
	iovec iov{ const_cast<std::byte *>(bytes.data()), bytes.size() };
	return sendAll(fd, &iov, 1);
}

} // namespace r3d::nbd
