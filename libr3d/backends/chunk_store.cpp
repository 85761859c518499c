#include "backends/chunk_store.hpp"

#include <cinttypes>
#include <cstdio>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "stages/chunk_geometry.hpp"
#include "stages/chunk_range.hpp"

namespace r3d::backends {

Result<void> ChunkStore::checkAligned(uint64_t offset, uint64_t length, bool forWrite) const
{
	return stages::ChunkGeometry{ size_, chunkSize_ }.checkWholeChunks(offset, length, forWrite);
}

Result<void> ChunkStore::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkAligned(offset, buf.size(), false));
	std::vector<ChunkRead> reads;
	R3D_TRY(stages::forEachChunk(offset, buf.size(), chunkSize_, size_, [&](const stages::ChunkPiece &p) {
		reads.push_back(ChunkRead{ p.index, buf.subspan(p.bufPos, p.length) });
		return Result<void>{};
	}));
	return reads.empty() ? Result<void>{} : getChunks(reads);
}

Result<void> ChunkStore::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkAligned(offset, buf.size(), true));
	std::vector<ChunkWrite> writes;
	R3D_TRY(stages::forEachChunk(offset, buf.size(), chunkSize_, size_, [&](const stages::ChunkPiece &p) {
		writes.push_back(ChunkWrite{ p.index, buf.subspan(p.bufPos, p.length) });
		return Result<void>{};
	}));
	return writes.empty() ? Result<void>{} : putChunks(writes);
}

Result<void> ChunkStore::trim(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkAligned(offset, length, true));
	std::vector<uint64_t> indices;
	for (uint64_t i = offset / chunkSize_; i < stages::chunkCount(offset + length, chunkSize_); ++i)
		indices.push_back(i);
	return indices.empty() ? Result<void>{} : deleteChunks(indices);
}

ResultMsg<void> StoreParams::parse(const BackendUri &uri, const char *concurrencyKey, unsigned maxConcurrency,
				  const std::set<std::string> &extra)
{
	std::set<std::string> known{ "size", "chunk", "timeout", "deadline", concurrencyKey };
	known.insert(extra.begin(), extra.end());
	auto ok = uri.onlyParams(known);
	if (!ok)
		return ok;
	auto sizeValue = uri.sizeParam("size");
	if (!sizeValue)
		return unexpectedOf(sizeValue.error());
	auto chunkValue = uri.sizeParam("chunk");
	if (!chunkValue)
		return unexpectedOf(chunkValue.error());
	auto concurrencyValue = uri.sizeParam(concurrencyKey);
	if (!concurrencyValue)
		return unexpectedOf(concurrencyValue.error());
	if (concurrencyValue->value_or(concurrency) > maxConcurrency)
		return fail(EINVAL, fmt::format("'{}': {} must be at most {}", uri.text, concurrencyKey, maxConcurrency));
	auto timeoutValue = uri.durationParam("timeout", timeout);
	if (!timeoutValue)
		return unexpectedOf(timeoutValue.error());
	auto deadlineValue = uri.durationParam("deadline", retry.deadline);
	if (!deadlineValue)
		return unexpectedOf(deadlineValue.error());
	size = *sizeValue;
	chunkSize = *chunkValue;
	concurrency = static_cast<unsigned>(concurrencyValue->value_or(concurrency));
	timeout = *timeoutValue;
	retry.deadline = *deadlineValue;
	return {};
}

std::string StoreGeometry::format() const
{
	return fmt::format("size={}\nchunk={}\n", size, chunkSize);
}

std::optional<StoreGeometry> StoreGeometry::parse(const std::string &text)
{
	uint64_t size = 0, chunk = 0;
	if (std::sscanf(text.c_str(), "size=%" SCNu64 "\nchunk=%" SCNu64, &size, &chunk) != 2 || size == 0 || chunk == 0)
		return std::nullopt;
	return StoreGeometry{ size, chunk };
}

ResultMsg<StoreGeometry> StoreGeometry::resolve(const std::optional<std::string> &stored, std::optional<uint64_t> size,
					       std::optional<uint64_t> chunkSize, uint64_t defaultChunk,
					       const std::string &where)
{
	if (chunkSize && !stages::ChunkGeometry::validChunk(*chunkSize))
		return fail(EINVAL, fmt::format("{}: chunk size {} is outside {} .. {}", where, *chunkSize,
						formatSize(limits::kMinChunk), formatSize(limits::kMaxChunk)));
	if (stored) {
		auto g = parse(*stored);
		if (!g)
			return fail(EINVAL, fmt::format("{}: the stored geometry is not r3map's: '{}'", where, *stored));
		if (size && *size != g->size)
			return fail(EINVAL, fmt::format("{} holds a device of {} bytes, not size={}", where, g->size, *size));
		if (chunkSize && *chunkSize != g->chunkSize)
			return fail(EINVAL, fmt::format("{} was written with chunk={}, not chunk={}", where, g->chunkSize,
							*chunkSize));
		return *g;
	}
	if (!size)
		return fail(EINVAL, fmt::format("{} is new; give its size (size=SIZE)", where));
	return StoreGeometry{ *size, chunkSize.value_or(defaultChunk) };
}

} // namespace r3d::backends
