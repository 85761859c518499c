#include <r3d/read_writer_at.hpp>

#include <algorithm>
#include <array>

namespace r3d {

namespace {

// Large enough that writeZeroes() of a big range needs few calls, small enough to live in .bss.
constexpr size_t kZeroBufferSize = 1 << 20;
const std::array<std::byte, kZeroBufferSize> kZeros{};

} // namespace

Result<void> checkRange(uint64_t offset, uint64_t length, uint64_t size, bool forWrite)
{
	if (offset > size || length > size - offset)
		return unexpected(forWrite ? ENOSPC : EINVAL);
	return {};
}

void appendExtent(std::vector<Extent> &extents, const Extent &e)
{
	if (!extents.empty() && extents.back().hole == e.hole && extents.back().zero == e.zero)
		extents.back().length += e.length;
	else
		extents.push_back(e);
}

Result<void> ReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	return writeZeroes(offset, length);
}

Result<void> ReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size(), true));
	while (length > 0) {
		size_t n = static_cast<size_t>(std::min<uint64_t>(length, kZeroBufferSize));
		R3D_TRY(writeAt(std::span(kZeros.data(), n), offset));
		offset += n;
		length -= n;
	}
	return {};
}

Result<void> ReadWriterAt::cache(uint64_t offset, uint64_t length)
{
	return checkRange(offset, length, size(), false);
}

Result<std::vector<Extent>> ReadWriterAt::extents(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, size(), false));
	return std::vector<Extent>{ Extent{ length, false, false } };
}

} // namespace r3d
