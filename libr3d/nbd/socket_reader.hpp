#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include <sys/uio.h>

#include <r3d/result.hpp>

namespace r3d::nbd {

/// Buffered reads from a stream socket. Before it would block waiting for the peer it
/// calls `beforeBlock` (the session flushes its batched replies there), so replies go
/// out in batches while the client keeps sending and immediately when it pauses.
class SocketReader
{
public:
	SocketReader(int fd, size_t capacity, std::function<void()> beforeBlock);

	/// Buffers at least `n` (≤ capacity) bytes. false: the peer closed the connection.
	Result<bool> fill(size_t n);
	const std::byte *data() const { return buf_.data() + start_; }
	size_t available() const { return end_ - start_; }
	void consume(size_t n) { start_ += n; }

	/// Fills `dst` from the buffer, then straight from the socket. false: EOF.
	Result<bool> read(std::span<std::byte> dst);
	/// Skips `n` bytes without storing them. false: EOF.
	Result<bool> discard(uint64_t n);

private:
	/// One recv into [dst, dst+len); 0 on EOF.
	Result<size_t> receive(std::byte *dst, size_t len);

	int fd_;
	std::vector<std::byte> buf_;
	size_t start_ = 0;
	size_t end_ = 0;
	std::function<void()> beforeBlock_;
};

/// Sends every byte of the iovecs (MSG_NOSIGNAL), retrying on short writes.
Result<void> sendAll(int fd, iovec *iov, int count);
Result<void> sendAll(int fd, std::span<const std::byte> bytes);

} // namespace r3d::nbd
