#include "stages/synced_read_writer_at.hpp"

#include <vector>

#include "cache/journal.hpp"
#include "stages/puller.hpp"
#include "stages/pusher.hpp"

namespace r3d::stages {

SyncedReadWriterAt::SyncedReadWriterAt(SyncContext &ctx, Puller &puller, Pusher &pusher)
	: ctx_(ctx), puller_(puller), pusher_(pusher)
{
}

Result<void> SyncedReadWriterAt::readAt(std::span<std::byte> buf, uint64_t offset)
{
	R3D_TRY(checkRange(offset, buf.size(), ctx_.geometry.size, false));
	if (buf.empty())
		return {};
	uint64_t first = offset / ctx_.geometry.chunk, last = (offset + buf.size() - 1) / ctx_.geometry.chunk;
	puller_.noteRead(first, last);
	R3D_TRY(puller_.demand(first, last));
	return ctx_.cache->readAt(buf, offset);
}

Result<void> SyncedReadWriterAt::cache(uint64_t offset, uint64_t length)
{
	R3D_TRY(checkRange(offset, length, ctx_.geometry.size, false));
	if (length == 0)
		return {};
	return puller_.demand(offset / ctx_.geometry.chunk, (offset + length - 1) / ctx_.geometry.chunk);
}

template <class Apply>
Result<void> SyncedReadWriterAt::modify(uint64_t offset, uint64_t length, Apply &&apply)
{
	R3D_TRY(checkRange(offset, length, ctx_.geometry.size, true));
	if (length == 0)
		return {};
	const uint64_t chunk = ctx_.geometry.chunk;
	uint64_t end = offset + length;
	uint64_t first = offset / chunk, last = (end - 1) / chunk;
	uint64_t started = first; // chunks [first, started) have a writer registered
	auto unwind = [&] {
		for (uint64_t i = first; i < started; ++i)
			ctx_.state.endWrite(i);
	};
	for (uint64_t i = first; i <= last; ++i) {
		uint64_t cStart = i * chunk, cEnd = cStart + ctx_.geometry.lengthOf(i);
		bool whole = offset <= cStart && end >= cEnd;
		for (;;) {
			bool wasClean = false;
			auto b = ctx_.state.beginWrite(i, whole, wasClean);
			if (b == ChunkState::Begin::Started) {
				started = i + 1;
				// Dirty in the journal before the data is in the cache (see journal.hpp);
				// also after an earlier write's record failed and left it dirty unrecorded.
				if (ctx_.journal && (wasClean || ctx_.journal->dirtyUnrecorded(i)))
					if (auto r = ctx_.journal->recordDirty(i); !r) {
						if (wasClean)
							pusher_.noteDirty(i); // dirty all the same: the pusher must know
						unwind();
						return r;
					}
				if (wasClean)
					pusher_.noteDirty(i);
				break;
			}
			if (b == ChunkState::Begin::WaitPull) {
				ctx_.state.waitWhilePulling(i);
				continue;
			}
			// Part of a remote chunk: the rest of it must come first.
			if (auto r = puller_.demand(i, i); !r) {
				unwind();
				return r;
			}
		}
	}
	Result<void> r = apply();
	unwind();
	return r;
}

Result<void> SyncedReadWriterAt::writeAt(std::span<const std::byte> buf, uint64_t offset)
{
	return modify(offset, buf.size(), [&] { return ctx_.cache->writeAt(buf, offset); });
}

Result<void> SyncedReadWriterAt::writeZeroes(uint64_t offset, uint64_t length)
{
	return modify(offset, length, [&] { return ctx_.cache->writeZeroes(offset, length); });
}

Result<void> SyncedReadWriterAt::trim(uint64_t offset, uint64_t length)
{
	// The remote must read zeros there too once pushed, so a discard is a zeroing here.
	return writeZeroes(offset, length);
}

Result<void> SyncedReadWriterAt::sync()
{
	if (ctx_.journal)
		R3D_TRY(ctx_.journal->checkpoint(*ctx_.cache, true));
	else
		R3D_TRY(ctx_.cache->sync());
	pusher_.kick();
	return {};
}

} // namespace r3d::stages
