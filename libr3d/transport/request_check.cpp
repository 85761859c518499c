#include "transport/request_check.hpp"

#include <cerrno>

#include <r3d/read_writer_at.hpp>

#include "stages/chunk_geometry.hpp"
#include "stages/chunk_range.hpp"

namespace r3d::transport {

namespace {

int errnoOf(const Result<void> &r)
{
	return r ? 0 : r.error().value();
}

// A data range: inside the device, within the payload cap, and one whole chunk when chunked.
int checkDataRange(uint64_t offset, uint64_t length, const ExportGeometry &g, bool forWrite)
{
	if (length > g.maxPayload)
		return EOVERFLOW;
	if (int err = errnoOf(checkRange(offset, length, g.size, forWrite)))
		return err;
	return g.chunkSize == 0 ? 0 : errnoOf(stages::ChunkGeometry{ g.size, g.chunkSize }.checkOneChunk(offset, length, forWrite));
}

// Trim and zeroing may cover many chunks, but only whole ones.
int checkDiscardRange(uint64_t offset, uint64_t length, const ExportGeometry &g)
{
	if (g.chunkSize == 0)
		return errnoOf(checkRange(offset, length, g.size, true));
	return errnoOf(stages::ChunkGeometry{ g.size, g.chunkSize }.checkWholeChunks(offset, length, true));
}

} // namespace

int checkRequest(const Request &r, uint32_t payloadLength, const ExportGeometry &g)
{
	if (r.op != Op::Write && payloadLength != 0)
		return EINVAL;
	if (r.op != Op::ReadRanges && !r.ranges.empty())
		return EINVAL;
	switch (r.op) {
	case Op::Read:
		return checkDataRange(r.offset, r.length, g, false);
	case Op::Write:
		if (g.readOnly)
			return EROFS;
		if (payloadLength != r.length)
			return EINVAL;
		return checkDataRange(r.offset, r.length, g, true);
	case Op::Trim:
	case Op::WriteZeroes:
		if (g.readOnly)
			return EROFS;
		return checkDiscardRange(r.offset, r.length, g);
	case Op::Size:
	case Op::Sync:
		return 0;
	case Op::ReadRanges: {
		if (r.ranges.empty() || r.ranges.size() > kMaxRanges)
			return EINVAL;
		uint64_t total = 0;
		for (const auto &range : r.ranges) {
			if (int err = checkDataRange(range.offset, range.length, g, false))
				return err;
			total += range.length;
			if (total > g.maxPayload)
				return EOVERFLOW;
		}
		return 0;
	}
	}
	return EOPNOTSUPP;
}

} // namespace r3d::transport
