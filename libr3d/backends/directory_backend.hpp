#pragma once

#include <array>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/unique_fd.hpp>

#include "backends/fd_cache.hpp"

namespace r3d::backends {

/// One file per chunk in a directory. A missing chunk file reads as zeros and costs no
/// disk; trimming a whole chunk deletes its file. Open files are bounded by an LRU cache.
/// The geometry is stored in the directory (r3map.meta) so a later open with another
/// chunk size cannot misread the data.
class DirectoryBackend final : public ReadWriterAt
{
public:
	static constexpr uint64_t kDefaultChunkSize = 64 * 1024;
	static constexpr size_t kDefaultMaxOpenFiles = 256;

	static ResultMsg<std::unique_ptr<DirectoryBackend>> open(const std::string &path, std::optional<uint64_t> size,
								 std::optional<uint64_t> chunkSize,
								 size_t maxOpenFiles = kDefaultMaxOpenFiles);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return size_; }
	Result<void> sync() override;
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroesFast(uint64_t offset, uint64_t length) override;
	bool canFastZero() const override { return true; }
	Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override;

	uint64_t chunkSize() const { return chunkSize_; }
	size_t openFiles() const { return cache_.size(); }

private:
	DirectoryBackend(std::string path, UniqueFd dir, uint64_t size, uint64_t chunkSize, size_t maxOpenFiles);

	Result<void> zero(uint64_t offset, uint64_t length, bool fastOnly);
	FdCache::Handle chunkFd(uint64_t index, bool create);
	bool chunkExists(uint64_t index) const;
	std::shared_mutex &stripe(uint64_t index) { return stripes_[index % stripes_.size()]; }

	std::string path_;
	UniqueFd dir_;
	uint64_t size_;
	uint64_t chunkSize_;
	FdCache cache_;
	// Reads and writes of a chunk share its stripe; deleting a chunk file takes it alone,
	// so no write can land in a file that was just unlinked.
	std::array<std::shared_mutex, 64> stripes_;
};

} // namespace r3d::backends
