#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <r3d/result.hpp>

namespace r3d {

/// pread until `buf` is full or the file ends; returns the bytes read (short only at EOF).
Result<size_t> preadFull(int fd, std::span<std::byte> buf, uint64_t offset);
/// pwrite all of `buf`, retrying short writes and EINTR.
Result<void> pwriteFull(int fd, std::span<const std::byte> buf, uint64_t offset);

} // namespace r3d
