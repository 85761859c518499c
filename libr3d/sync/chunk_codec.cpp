#include "sync/chunk_codec.hpp"

#include <memory>

#include <zstd.h>

#include <fmt/format.h>

namespace r3d::sync {

namespace {

constexpr int kLevel = 1;

struct FreeCCtx {
	void operator()(ZSTD_CCtx *c) const { ZSTD_freeCCtx(c); }
};
struct FreeDCtx {
	void operator()(ZSTD_DCtx *c) const { ZSTD_freeDCtx(c); }
};

} // namespace

std::optional<std::string> compressChunk(std::span<const std::byte> chunk)
{
	if (chunk.size() < 64)
		return std::nullopt;
	// One context per thread: creating one per chunk costs more than compressing it.
	thread_local std::unique_ptr<ZSTD_CCtx, FreeCCtx> context(ZSTD_createCCtx());
	if (!context)
		return std::nullopt;
	std::string out(ZSTD_compressBound(chunk.size()), '\0');
	size_t n = ZSTD_compressCCtx(context.get(), out.data(), out.size(), chunk.data(), chunk.size(), kLevel);
	if (ZSTD_isError(n) || n >= chunk.size())
		return std::nullopt;
	out.resize(n);
	return out;
}

ResultMsg<void> decompressChunk(std::span<const std::byte> frame, std::span<std::byte> out)
{
	// The declared size first: a frame that would expand past the chunk is refused before
	// any work.
	unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
	if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN)
		return fail(EPROTO, "a zstd chunk that is not one zstd frame with its content size");
	if (declared != out.size())
		return fail(EPROTO, fmt::format("a zstd chunk declares {} bytes, not the chunk's {}", declared, out.size()));
	thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> context(ZSTD_createDCtx());
	if (!context)
		return fail(ENOMEM, "no zstd decompression context");
	size_t n = ZSTD_decompressDCtx(context.get(), out.data(), out.size(), frame.data(), frame.size());
	if (ZSTD_isError(n))
		return fail(EPROTO, fmt::format("a zstd chunk does not decode: {}", ZSTD_getErrorName(n)));
	if (n != out.size())
		return fail(EPROTO, fmt::format("a zstd chunk decodes to {} bytes, not the chunk's {}", n, out.size()));
	return {};
}

} // namespace r3d::sync
