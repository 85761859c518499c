#include "transport/block/ops.hpp"

#include <array>
#include <cerrno>

#include "stages/chunk_geometry.hpp"
#include "stages/chunk_range.hpp"

namespace r3d::transport {

namespace {

int errnoOf(const Result<void> &r)
{
	return r ? 0 : r.error().value();
}

Result<uint64_t> done(const Result<void> &r)
{
	if (!r)
		return unexpected(r.error());
	return 0;
}

// A data range: inside the device, within the payload cap, and one whole chunk when chunked.
int checkDataRange(uint64_t offset, uint64_t length, const ExportGeometry &g, bool forWrite)
{
	if (length > g.maxPayload)
		return EOVERFLOW;
	if (int err = errnoOf(checkRange(offset, length, g.size, forWrite)))
		return err;
	return g.chunkSize == 0 ? 0
				: errnoOf(stages::ChunkGeometry{ g.size, g.chunkSize }.checkOneChunk(offset, length, forWrite));
}

// Trim and zeroing may cover many chunks, but only whole ones.
int checkDiscard(const Request &r, uint32_t, const ExportGeometry &g)
{
	if (g.readOnly)
		return EROFS;
	if (g.chunkSize == 0)
		return errnoOf(checkRange(r.offset, r.length, g.size, true));
	return errnoOf(stages::ChunkGeometry{ g.size, g.chunkSize }.checkWholeChunks(r.offset, r.length, true));
}

int checkNothing(const Request &, uint32_t, const ExportGeometry &)
{
	return 0;
}

uint64_t noReplyPayload(const Request &)
{
	return 0;
}

int checkRead(const Request &r, uint32_t, const ExportGeometry &g)
{
	return checkDataRange(r.offset, r.length, g, false);
}

uint64_t readReplyPayload(const Request &r)
{
	return r.length;
}

Result<uint64_t> executeRead(const OpCall &c)
{
	return done(c.backend.readAt(c.payload, c.request.offset));
}

int checkWrite(const Request &r, uint32_t payloadLength, const ExportGeometry &g)
{
	if (g.readOnly)
		return EROFS;
	if (payloadLength != r.length)
		return EINVAL;
	return checkDataRange(r.offset, r.length, g, true);
}

Result<uint64_t> executeWrite(const OpCall &c)
{
	return done(c.backend.writeAt(c.payload, c.request.offset));
}

Result<uint64_t> executeSize(const OpCall &c)
{
	return c.geometry.size;
}

Result<uint64_t> executeSync(const OpCall &c)
{
	return done(c.backend.sync());
}

template <bool Trim>
Result<uint64_t> executeDiscard(const OpCall &c)
{
	const auto &r = c.request;
	const auto &g = c.geometry;
	auto discard = [&](uint64_t offset, uint64_t length) {
		return Trim ? c.backend.trim(offset, length) : c.backend.writeZeroes(offset, length);
	};
	if (g.chunkSize == 0)
		return done(discard(r.offset, r.length));
	// checkRequest let only whole chunks through; the guard takes them one at a time.
	return done(stages::forEachChunk(r.offset, r.length, g.chunkSize, g.size, [&](const stages::ChunkPiece &p) {
		return discard(p.chunkOffset(g.chunkSize), p.length);
	}));
}

int checkReadRanges(const Request &r, uint32_t, const ExportGeometry &g)
{
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

uint64_t readRangesReplyPayload(const Request &r)
{
	uint64_t total = 0;
	for (const auto &range : r.ranges)
		total += range.length;
	return total;
}

Result<uint64_t> executeReadRanges(const OpCall &c)
{
	size_t pos = 0;
	for (const auto &range : c.request.ranges) {
		R3D_TRY(c.backend.readAt(c.payload.subspan(pos, range.length), range.offset));
		pos += range.length;
	}
	return 0;
}

//                                  changes payload ranges local
constexpr std::array kOps{
	OpHandler{ Op::Read, "read", false, false, false, false, checkRead, readReplyPayload, executeRead },
	OpHandler{ Op::Write, "write", true, true, false, false, checkWrite, noReplyPayload, executeWrite },
	OpHandler{ Op::Size, "size", false, false, false, true, checkNothing, noReplyPayload, executeSize },
	OpHandler{ Op::Sync, "sync", false, false, false, false, checkNothing, noReplyPayload, executeSync },
	OpHandler{ Op::Trim, "trim", true, false, false, false, checkDiscard, noReplyPayload, executeDiscard<true> },
	OpHandler{ Op::WriteZeroes, "write-zeroes", true, false, false, false, checkDiscard, noReplyPayload,
		   executeDiscard<false> },
	OpHandler{ Op::ReadRanges, "read-ranges", false, false, true, false, checkReadRanges, readRangesReplyPayload,
		   executeReadRanges },
};

} // namespace

const OpHandler *findOp(Op op)
{
	for (const auto &h : kOps)
		if (h.op == op)
			return &h;
	return nullptr;
}

const char *opName(Op op)
{
	const auto *h = findOp(op);
	return h ? h->name : "unknown";
}

bool changesData(Op op)
{
	const auto *h = findOp(op);
	return h && h->changesData;
}

uint64_t replyPayloadLength(const Request &r)
{
	const auto *h = findOp(r.op);
	return h ? h->replyPayload(r) : 0;
}

} // namespace r3d::transport
