#pragma once

#include <utility>

namespace r3d {

/// Move-only owner of a file descriptor; closes it on destruction.
class UniqueFd
{
public:
	UniqueFd() = default;
	explicit UniqueFd(int fd) : fd_(fd) {}
	UniqueFd(UniqueFd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
	UniqueFd &operator=(UniqueFd &&other) noexcept
	{
		if (this != &other)
			reset(std::exchange(other.fd_, -1));
		return *this;
	}
	UniqueFd(const UniqueFd &) = delete;
	UniqueFd &operator=(const UniqueFd &) = delete;
	~UniqueFd() { reset(); }

	int get() const { return fd_; }
	bool isValid() const { return fd_ >= 0; }
	explicit operator bool() const { return isValid(); }

	[[nodiscard]] int release() { return std::exchange(fd_, -1); }
	void reset(int fd = -1);

	/// dup() with O_CLOEXEC; invalid on failure (errno set).
	UniqueFd dup() const;

private:
	int fd_ = -1;
};

/// Sets FD_CLOEXEC on a descriptor someone else opened without it (Asio, hiredis),
/// keeping its other flags.
void setCloexec(int fd);

} // namespace r3d
