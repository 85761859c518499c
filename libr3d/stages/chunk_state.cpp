#include "stages/chunk_state.hpp"

#include <thread>

namespace r3d::stages {

const char *phaseName(ChunkPhase phase)
{
	switch (phase) {
	case ChunkPhase::Remote: return "remote";
	case ChunkPhase::Pulling: return "pulling";
	case ChunkPhase::Local: return "local";
	case ChunkPhase::Dirty: return "dirty";
	case ChunkPhase::Pushing: return "pushing";
	}
	return "unknown";
}

ChunkState::ChunkState(uint64_t chunks) : chunks_(chunks), words_(new std::atomic<uint32_t>[chunks])
{
	for (uint64_t i = 0; i < chunks; ++i)
		words_[i].store(0, std::memory_order_relaxed);
	counts_[0].store(static_cast<int64_t>(chunks), std::memory_order_relaxed);
}

void ChunkState::reset(uint64_t index, ChunkPhase phase)
{
	uint32_t old = words_[index].exchange(make(phase, 0, 0), std::memory_order_acq_rel);
	moved(Word{ old }.phase(), phase);
}

bool ChunkState::claimPull(uint64_t index)
{
	uint32_t cur = words_[index].load(std::memory_order_acquire);
	while (Word{ cur }.phase() == ChunkPhase::Remote) {
		uint32_t next = (cur & ~kPhaseMask) | static_cast<uint32_t>(ChunkPhase::Pulling);
		if (words_[index].compare_exchange_weak(cur, next, std::memory_order_acq_rel)) {
			moved(ChunkPhase::Remote, ChunkPhase::Pulling);
			return true;
		}
	}
	return false;
}

void ChunkState::finishPull(uint64_t index, bool ok)
{
	auto &w = words_[index];
	uint32_t cur = w.load(std::memory_order_acquire);
	ChunkPhase to = ok ? ChunkPhase::Local : ChunkPhase::Remote;
	// Only the owner of the pull moves a pulling chunk, and writers wait, so this is the
	// only transition out of it.
	while (!w.compare_exchange_weak(cur, (cur & ~kPhaseMask) | static_cast<uint32_t>(to), std::memory_order_acq_rel)) {
	}
	moved(ChunkPhase::Pulling, to);
	w.notify_all();
}

bool ChunkState::dropLocal(uint64_t index)
{
	uint32_t cur = words_[index].load(std::memory_order_acquire);
	while (Word{ cur }.phase() == ChunkPhase::Local) {
		uint32_t next = (cur & ~kPhaseMask) | static_cast<uint32_t>(ChunkPhase::Remote);
		if (words_[index].compare_exchange_weak(cur, next, std::memory_order_acq_rel)) {
			moved(ChunkPhase::Local, ChunkPhase::Remote);
			return true;
		}
	}
	return false;
}

ChunkState::Word ChunkState::waitWhilePulling(uint64_t index) const
{
	auto &w = words_[index];
	uint32_t cur = w.load(std::memory_order_acquire);
	while (Word{ cur }.phase() == ChunkPhase::Pulling) {
		w.wait(cur, std::memory_order_acquire);
		cur = w.load(std::memory_order_acquire);
	}
	return { cur };
}

ChunkState::Begin ChunkState::beginWrite(uint64_t index, bool whole, bool &wasClean)
{
	auto &w = words_[index];
	uint32_t cur = w.load(std::memory_order_acquire);
	for (;;) {
		Word word{ cur };
		ChunkPhase phase = word.phase();
		if (phase == ChunkPhase::Pulling)
			return Begin::WaitPull;
		if (phase == ChunkPhase::Remote && !whole)
			return Begin::NeedPull;
		if (word.writers() == kWriterMax) {
			// 127 writes to one chunk at once: let one finish.
			std::this_thread::yield();
			cur = w.load(std::memory_order_acquire);
			continue;
		}
		uint32_t gen = (word.generation() + 1) & (0xffffffffu >> kGenShift);
		uint32_t next = make(ChunkPhase::Dirty, word.writers() + 1, gen);
		if (w.compare_exchange_weak(cur, next, std::memory_order_acq_rel)) {
			moved(phase, ChunkPhase::Dirty);
			wasClean = phase == ChunkPhase::Remote || phase == ChunkPhase::Local;
			return Begin::Started;
		}
	}
}

void ChunkState::endWrite(uint64_t index)
{
	// A write that ends raises the generation again, so a push claimed while it was in
	// flight (impossible: claims need zero writers) or copied across it never matches.
	auto &w = words_[index];
	uint32_t cur = w.load(std::memory_order_acquire);
	for (;;) {
		Word word{ cur };
		uint32_t gen = (word.generation() + 1) & (0xffffffffu >> kGenShift);
		uint32_t next = make(word.phase(), word.writers() - 1, gen);
		if (w.compare_exchange_weak(cur, next, std::memory_order_acq_rel))
			return;
	}
}

int64_t ChunkState::claimPush(uint64_t index)
{
	auto &w = words_[index];
	uint32_t cur = w.load(std::memory_order_acquire);
	for (;;) {
		Word word{ cur };
		if (word.phase() != ChunkPhase::Dirty || word.writers() != 0)
			return -1;
		uint32_t next = make(ChunkPhase::Pushing, 0, word.generation());
		if (w.compare_exchange_weak(cur, next, std::memory_order_acq_rel)) {
			moved(ChunkPhase::Dirty, ChunkPhase::Pushing);
			return word.generation();
		}
	}
}

bool ChunkState::unchangedSince(uint64_t index, uint32_t generation) const
{
	return words_[index].load(std::memory_order_acquire) == make(ChunkPhase::Pushing, 0, generation);
}

bool ChunkState::finishPush(uint64_t index, uint32_t generation, bool ok)
{
	uint32_t expected = make(ChunkPhase::Pushing, 0, generation);
	uint32_t next = make(ok ? ChunkPhase::Local : ChunkPhase::Dirty, 0, generation);
	if (!words_[index].compare_exchange_strong(expected, next, std::memory_order_acq_rel))
		return false;
	moved(ChunkPhase::Pushing, ok ? ChunkPhase::Local : ChunkPhase::Dirty);
	return ok;
}

ChunkState::Census ChunkState::census() const
{
	auto n = [&](ChunkPhase p) {
		int64_t v = counts_[static_cast<uint32_t>(p)].load(std::memory_order_relaxed);
		return v < 0 ? uint64_t{ 0 } : static_cast<uint64_t>(v);
	};
	return { n(ChunkPhase::Remote), n(ChunkPhase::Pulling), n(ChunkPhase::Local), n(ChunkPhase::Dirty),
		 n(ChunkPhase::Pushing) };
}

uint64_t ChunkState::findNext(uint64_t from, ChunkPhase phase) const
{
	for (uint64_t i = from; i < chunks_; ++i)
		if (load(i).phase() == phase)
			return i;
	return chunks_;
}

} // namespace r3d::stages
