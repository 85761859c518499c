#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
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

	/// Reads from `fd` from now on (STARTTLS: the TLS relay); nothing may be buffered.
	void setFd(int fd) { fd_ = fd; }

	/// After `deadline`, a read that would wait fails with ETIMEDOUT; nullopt: no limit.
	void setDeadline(std::optional<std::chrono::steady_clock::time_point> deadline) { deadline_ = deadline; }

private:
	/// One recv into [dst, dst+len); 0 on EOF.
	Result<size_t> receive(std::byte *dst, size_t len);

	int fd_;
	std::vector<std::byte> buf_;
	size_t start_ = 0;
	size_t end_ = 0;
	std::function<void()> beforeBlock_;
	std::optional<std::chrono::steady_clock::time_point> deadline_;
};

/// Asked while a send is stalled (the peer takes no bytes) with how long it has been so;
/// returning false gives up and the send fails with ETIMEDOUT.
using StallCheck = std::function<bool(std::chrono::milliseconds stalled)>;

/// Sends every byte of the iovecs (MSG_NOSIGNAL), retrying on short writes. Without a
/// StallCheck it waits for the peer as long as it takes.
Result<void> sendAll(int fd, iovec *iov, int count, const StallCheck &keepWaiting = {});
Result<void> sendAll(int fd, std::span<const std::byte> bytes, const StallCheck &keepWaiting = {});

} // namespace r3d::nbd
