#include "backends/file_backend.hpp"

#include <cstring>

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "base/file_io.hpp"

namespace r3d::backends {

ResultMsg<std::unique_ptr<FileBackend>> FileBackend::open(const std::string &path, std::optional<uint64_t> size)
{
	if (path.empty())
		return fail(EINVAL, "file: path is empty");
	if (size && *size == 0)
		return fail(EINVAL, "file: size must be greater than 0");
	if (size && *size > static_cast<uint64_t>(INT64_MAX))
		return fail(EFBIG, fmt::format("file: size {} is larger than a file can be", *size));

	int flags = O_RDWR | O_CLOEXEC | (size ? O_CREAT : 0);
	bool readOnly = false;
	UniqueFd fd(::open(path.c_str(), flags, 0644));
	if (!fd && (errno == EACCES || errno == EROFS) && !size) {
		fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
		readOnly = true;
	}
	if (!fd) {
		int err = errno;
		return fail(err, fmt::format("file: cannot open '{}': {}", path, std::strerror(err)));
	}

	struct stat st {};
	if (::fstat(fd.get(), &st) != 0) {
		int err = errno;
		return fail(err, fmt::format("file: cannot stat '{}': {}", path, std::strerror(err)));
	}
	bool blockDevice = S_ISBLK(st.st_mode);
	if (!blockDevice && !S_ISREG(st.st_mode))
		return fail(EINVAL, fmt::format("file: '{}' is neither a regular file nor a block device", path));

	uint64_t current = static_cast<uint64_t>(st.st_size);
	if (blockDevice && ::ioctl(fd.get(), BLKGETSIZE64, &current) != 0) {
		int err = errno;
		return fail(err, fmt::format("file: cannot get the size of '{}': {}", path, std::strerror(err)));
	}

	uint64_t deviceSize = current;
	if (size) {
		deviceSize = *size;
		if (current < *size) {
			if (blockDevice)
				return fail(EFBIG, fmt::format("file: block device '{}' has {} but size={} was asked for",
							       path, formatSize(current), formatSize(*size)));
			if (::ftruncate(fd.get(), static_cast<off_t>(*size)) != 0) {
				int err = errno;
				return fail(err, fmt::format("file: cannot extend '{}' to {}: {}", path,
							     formatSize(*size), std::strerror(err)));
			}
		}
	}
	if (deviceSize == 0)
		return fail(EINVAL, fmt::format("file: '{}' is empty; give a size, e.g. file:{}?size=1G", path, path));

	return std::unique_ptr<FileBackend>(new FileBackend(path, std::move(fd), deviceSize, readOnly, blockDevice));
}

FileBackend::FileBackend(std::string path, UniqueFd fd, uint64_t size, bool readOnly, bool blockDevice)
	: path_(std::move(path)), fd_(std::move(fd)), size_(size), readOnly_(readOnly), blockDevice_(blockDevice)
{
}

Result<void> FileBackend::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, false));
	auto got = preadFull(fd_.get(), buf, offset);
	if (!got)
		return unexpected(got.error());
	// The file shrank under us: what lies past its end reads as zeros.
	std::memset(buf.data() + *got, 0, buf.size() - *got);
	return {};
}

Result<void> FileBackend::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, true));
	if (readOnly_)
		return unexpected(EROFS);
	return pwriteFull(fd_.get(), buf, offset);
}

Result<void> FileBackend::sync()
{
	if (readOnly_)
		return {};
	if (::fdatasync(fd_.get()) != 0)
		return unexpected(errno);
	return {};
}

Result<void> FileBackend::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size_, true));
	if (readOnly_)
		return unexpected(EROFS);
	if (length == 0)
		return {};
	if (!blockDevice_ && ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 static_cast<off_t>(offset), static_cast<off_t>(length)) == 0)
		return {};
	return ReadWriterAt::writeZeroes(offset, length);
}

Result<void> FileBackend::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size_, true));
	if (readOnly_)
		return unexpected(EROFS);
	if (length == 0)
		return {};
	if (blockDevice_) {
		uint64_t range[2] = { offset, length };
		if (::ioctl(fd_.get(), BLKZEROOUT, range) == 0)
			return {};
	} else if (::fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
			       static_cast<off_t>(length)) == 0 ||
		   ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
			       static_cast<off_t>(length)) == 0) {
		return {};
	}
	return ReadWriterAt::writeZeroes(offset, length);
}

Result<std::vector<Extent>> FileBackend::extents(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size_, false));
	if (blockDevice_)
		return ReadWriterAt::extents(offset, length);
	std::vector<Extent> out;
	uint64_t end = offset + length;
	uint64_t pos = offset;
	while (pos < end) {
		off_t data = ::lseek(fd_.get(), static_cast<off_t>(pos), SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return ReadWriterAt::extents(offset, length); // SEEK_DATA unsupported: all data
		uint64_t dataStart = data < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(data), end);
		if (dataStart > pos) {
			out.push_back(Extent{ dataStart - pos, true, true });
			pos = dataStart;
			continue;
		}
		off_t hole = ::lseek(fd_.get(), static_cast<off_t>(pos), SEEK_HOLE);
		uint64_t holeStart = hole < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(hole), end);
		if (holeStart <= pos)
			holeStart = end;
		out.push_back(Extent{ holeStart - pos, false, false });
		pos = holeStart;
	}
	return out;
}

} // namespace r3d::backends
