#pragma once

#include <memory>
#include <optional>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/unique_fd.hpp>

namespace r3d::backends {

/// A regular file or block device, read and written with pread/pwrite and no lock of our
/// own: the kernel orders concurrent I/O per page. Trim punches holes; extents() uses
/// SEEK_DATA/SEEK_HOLE.
class FileBackend final : public ReadWriterAt
{
public:
	/// Opens `path`. With `size`, the file is created if missing and extended if shorter;
	/// without, it must exist and its current size is the device size.
	static ResultMsg<std::unique_ptr<FileBackend>> open(const std::string &path, std::optional<uint64_t> size);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return size_; }
	Result<void> sync() override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;
	bool canFastZero() const override { return !blockDevice_; }
	Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override;

	bool readOnly() const { return readOnly_; }
	const std::string &path() const { return path_; }

private:
	FileBackend(std::string path, UniqueFd fd, uint64_t size, bool readOnly, bool blockDevice);

	std::string path_;
	UniqueFd fd_;
	uint64_t size_;
	bool readOnly_;
	bool blockDevice_;
};

} // namespace r3d::backends
