#include "backends/directory_backend.hpp"

#include <cstdio>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "base/file_io.hpp"
#include "stages/chunk_geometry.hpp"
#include "stages/chunk_range.hpp"

namespace r3d::backends {

namespace {

constexpr const char *kMetaName = "r3map.meta";

std::string chunkName(uint64_t index)
{
	return fmt::format("{:016x}.chunk", index);
}

struct Geometry {
	uint64_t size = 0;
	uint64_t chunk = 0;
};

// The meta file is two "key=value" lines; anything else means it is not ours.
std::optional<Geometry> readMeta(int dirFd)
{
	UniqueFd fd(::openat(dirFd, kMetaName, O_RDONLY | O_CLOEXEC));
	if (!fd)
		return std::nullopt;
	char text[256] = {};
	ssize_t n = ::read(fd.get(), text, sizeof(text) - 1);
	if (n <= 0)
		return std::nullopt;
	Geometry g;
	unsigned long long size = 0, chunk = 0;
	if (std::sscanf(text, "size=%llu\nchunk=%llu", &size, &chunk) != 2)
		return std::nullopt;
	g.size = size;
	g.chunk = chunk;
	return g;
}

bool writeMeta(int dirFd, const Geometry &g)
{
	std::string text = fmt::format("size={}\nchunk={}\n", g.size, g.chunk);
	UniqueFd fd(::openat(dirFd, "r3map.meta.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
	    ::fsync(fd.get()) != 0)
		return false;
	return ::renameat(dirFd, "r3map.meta.tmp", dirFd, kMetaName) == 0;
}

} // namespace

ResultMsg<std::unique_ptr<DirectoryBackend>> DirectoryBackend::open(const std::string &path,
								    std::optional<uint64_t> size,
								    std::optional<uint64_t> chunkSize,
								    size_t maxOpenFiles)
{
	if (path.empty())
		return fail(EINVAL, "dir: path is empty");
	if (size && *size == 0)
		return fail(EINVAL, "dir: size must be greater than 0");
	if (chunkSize && !stages::ChunkGeometry::validChunk(*chunkSize))
		return fail(EINVAL, fmt::format("dir: chunk size {} is outside {} .. {}", *chunkSize,
						formatSize(limits::kMinChunk), formatSize(limits::kMaxChunk)));
	if (maxOpenFiles == 0)
		return fail(EINVAL, "dir: the open file limit must be at least 1");

	if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
		int err = errno;
		return fail(err, fmt::format("dir: cannot create '{}': {}", path, std::strerror(err)));
	}
	UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!dir) {
		int err = errno;
		return fail(err, fmt::format("dir: cannot open '{}': {}", path, std::strerror(err)));
	}

	Geometry g;
	if (auto meta = readMeta(dir.get())) {
		if (meta->size == 0 || !stages::ChunkGeometry::validChunk(meta->chunk))
			return fail(EINVAL, fmt::format("dir: '{}/{}' is corrupt (size={} chunk={})", path, kMetaName,
							meta->size, meta->chunk));
		if (size && *size != meta->size)
			return fail(EINVAL, fmt::format("dir: '{}' holds a device of {} bytes, not size={}", path,
							meta->size, *size));
		if (chunkSize && *chunkSize != meta->chunk)
			return fail(EINVAL, fmt::format("dir: '{}' was written with chunk={}, not chunk={}", path,
							meta->chunk, *chunkSize));
		g = *meta;
	} else {
		if (!size)
			return fail(EINVAL, fmt::format("dir: '{}' is new; give its size, e.g. dir:{}?size=1G", path, path));
		g.size = *size;
		g.chunk = chunkSize.value_or(kDefaultChunkSize);
		if (!writeMeta(dir.get(), g)) {
			int err = errno;
			return fail(err, fmt::format("dir: cannot write '{}/{}': {}", path, kMetaName, std::strerror(err)));
		}
	}
	return std::unique_ptr<DirectoryBackend>(
		new DirectoryBackend(path, std::move(dir), g.size, g.chunk, maxOpenFiles));
}

DirectoryBackend::DirectoryBackend(std::string path, UniqueFd dir, uint64_t size, uint64_t chunkSize,
				   size_t maxOpenFiles)
	: path_(std::move(path)), dir_(std::move(dir)), size_(size), chunkSize_(chunkSize), cache_(maxOpenFiles)
{
}

FdCache::Handle DirectoryBackend::chunkFd(uint64_t index, bool create)
{
	return cache_.get(index, [&](uint64_t key) {
		int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
		return UniqueFd(::openat(dir_.get(), chunkName(key).c_str(), flags, 0644));
	});
}

bool DirectoryBackend::chunkExists(uint64_t index) const
{
	struct stat st {};
	return ::fstatat(dir_.get(), chunkName(index).c_str(), &st, 0) == 0;
}

Result<void> DirectoryBackend::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, false));
	return stages::forEachChunk(offset, buf.size(), chunkSize_, size_, [&](const stages::ChunkPiece &p) -> Result<void> {
		auto dst = buf.subspan(p.bufPos, p.length);
		std::shared_lock lock(stripe(p.index));
		auto fd = chunkFd(p.index, false);
		if (!fd) {
			if (errno != ENOENT)
				return unexpected(errno);
			std::memset(dst.data(), 0, dst.size());
			return {};
		}
		auto got = preadFull(fd->get(), dst, p.inChunk);
		if (!got)
			return unexpected(got.error());
		// A short chunk file: the rest was never written.
		std::memset(dst.data() + *got, 0, dst.size() - *got);
		return {};
	});
}

Result<void> DirectoryBackend::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), size_, true));
	return stages::forEachChunk(offset, buf.size(), chunkSize_, size_, [&](const stages::ChunkPiece &p) -> Result<void> {
		auto src = buf.subspan(p.bufPos, p.length);
		std::shared_lock lock(stripe(p.index));
		auto fd = chunkFd(p.index, true);
		if (!fd)
			return unexpected(errno);
		return pwriteFull(fd->get(), src, p.inChunk);
	});
}

Result<void> DirectoryBackend::sync()
{
	// syncfs covers chunk files the LRU has already closed, and the new directory entries.
	if (::syncfs(dir_.get()) != 0)
		return unexpected(errno);
	return {};
}

Result<void> DirectoryBackend::zero(uint64_t offset, uint64_t length, bool fastOnly)
{
	R3D_TRY(checkRange(offset, length, size_, true));
	return stages::forEachChunk(offset, length, chunkSize_, size_, [&](const stages::ChunkPiece &p) -> Result<void> {
		if (p.whole()) {
			std::unique_lock lock(stripe(p.index));
			cache_.erase(p.index);
			if (::unlinkat(dir_.get(), chunkName(p.index).c_str(), 0) != 0 && errno != ENOENT)
				return unexpected(errno);
			return {};
		}
		std::shared_lock lock(stripe(p.index));
		auto fd = chunkFd(p.index, false);
		if (!fd)
			return errno == ENOENT ? Result<void>{} : unexpected(errno);
		if (::fallocate(fd->get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(p.inChunk),
				static_cast<off_t>(p.length)) == 0)
			return {};
		if (fastOnly)
			return unexpected(ENOTSUP);
		std::vector<std::byte> zeros(p.length);
		return pwriteFull(fd->get(), zeros, p.inChunk);
	});
}

Result<void> DirectoryBackend::writeZeroes(uint64_t offset, uint64_t length)
{
	return zero(offset, length, false);
}

Result<void> DirectoryBackend::writeZeroesFast(uint64_t offset, uint64_t length)
{
	return zero(offset, length, true);
}

Result<void> DirectoryBackend::trim(uint64_t offset, uint64_t length)
{
	return writeZeroes(offset, length);
}

Result<std::vector<Extent>> DirectoryBackend::extents(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size_, false));
	std::vector<Extent> out;
	auto r = stages::forEachChunk(offset, length, chunkSize_, size_, [&](const stages::ChunkPiece &p) -> Result<void> {
		bool hole = !chunkExists(p.index);
		appendExtent(out, Extent{ p.length, hole, hole });
		return {};
	});
	R3D_TRY(r);
	return out;
}

} // namespace r3d::backends
