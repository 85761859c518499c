#pragma once

#include <memory>

#include <r3d/read_writer_at.hpp>

#include "stages/sync_context.hpp"

namespace r3d::stages {

class Puller;
class Pusher;

/// The stage in front of a managed region: reads of present chunks come from the local
/// cache; a read of a remote chunk pulls it on demand (coalesced with a pull in flight) and
/// waits; a write to part of a remote chunk pulls it first, a whole-chunk write does not;
/// every write makes its chunks dirty at a new generation (journaled before the data lands).
/// sync() makes what was written durable locally (cache and journal) and kicks the pusher;
/// it does not wait for the remote: that is the region's pushAll() (Sync()).
/// Takes any offset and length.
class SyncedReadWriterAt final : public ReadWriterAt
{
public:
	SyncedReadWriterAt(SyncContext &ctx, Puller &puller, Pusher &pusher);

	Result<void> readAt(std::span<std::byte> buf, uint64_t offset) override;
	Result<void> writeAt(std::span<const std::byte> buf, uint64_t offset) override;
	uint64_t size() const override { return ctx_.geometry.size; }
	Result<void> sync() override;
	Result<void> cache(uint64_t offset, uint64_t length) override;
	/// Zeroing and discards are writes of zeros to the cache (cheap there: fallocate or
	/// page release) that the pusher sends as zeroing requests.
	Result<void> trim(uint64_t offset, uint64_t length) override;
	Result<void> writeZeroes(uint64_t offset, uint64_t length) override;

private:
	/// Registers a writer on every chunk of the range (pulling partial remote chunks first,
	/// journaling newly dirty ones), runs `apply` on the cache, then lets the chunks go.
	template <class Apply>
	Result<void> modify(uint64_t offset, uint64_t length, Apply &&apply);

	SyncContext &ctx_;
	Puller &puller_;
	Pusher &pusher_;
};

} // namespace r3d::stages
