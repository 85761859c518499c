// libFuzzer target for journal replay (libr3d/cache/journal.hpp): the input is a managed
// cache's journal file, corrupt in any way. Invariants: open() either refuses it with an
// error or replays it into chunk phases the journal can express (remote, local, dirty)
// with a report that adds up; a replayed journal opens again to the same phases (replay
// wrote a fresh snapshot); nothing crashes or leaks (ASan/UBSan).
//
// Input: byte 0 picks the region (chunk count and size); the rest is the file.
// With R3_WRITE_SEEDS=DIR set, it writes seeds: journals made by the real writer.

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "fuzz_support.hpp"
#include <vector>

#include "backends/memory_backend.hpp"
#include "cache/journal.hpp"

using namespace r3d;
using namespace r3d::cache;
using r3d::stages::ChunkPhase;
using r3d::stages::ChunkState;
using r3fuzz::check;

namespace {

JournalIdentity identityOf(uint8_t pick)
{
	switch (pick % 3) {
	case 0:
		return { 64 * 65536, 65536, "r3://remote:7700/disk" };
	case 1:
		return { 1000 * 4096 + 100, 4096, "file:/remote.img" };
	default:
		return { 3, 1, "memory:3" };
	}
}

uint64_t chunksOf(const JournalIdentity &id)
{
	return (id.size + id.chunk - 1) / id.chunk;
}

// One file per process: libFuzzer's -jobs/-workers run several processes.
const std::string &scratchPath()
{
	static const std::string path = [] {
		const char *dir = std::getenv("TMPDIR");
		return std::string(dir ? dir : "/tmp") + "/r3-journal-fuzz." + std::to_string(getpid());
	}();
	return path;
}

void writeFile(const std::string &path, const uint8_t *data, size_t size)
{
	std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char *>(data),
								       static_cast<std::streamsize>(size));
}

std::vector<ChunkPhase> phases(const ChunkState &state)
{
	std::vector<ChunkPhase> out;
	for (uint64_t i = 0; i < state.chunks(); ++i)
		out.push_back(state.load(i).phase());
	return out;
}

void writeSeeds(const std::string &dir)
{
	for (uint8_t pick = 0; pick < 3; ++pick) {
		auto id = identityOf(pick);
		auto path = dir + "/journal-" + std::to_string(pick);
		::unlink(path.c_str());
		ChunkState state(chunksOf(id));
		ReplayReport report;
		auto cache = backends::MemoryBackend::create(id.size);
		auto journal = Journal::open(path, id, state, false, report);
		if (!journal || !cache)
			std::abort();
		for (uint64_t c = 0; c < state.chunks(); c += 2) {
			(void)(*journal)->recordDirty(c);
			if (c % 4 == 0)
				(void)(*journal)->recordClean(c);
			else if (c + 1 < state.chunks())
				(*journal)->notePulled(c + 1);
		}
		(void)(*journal)->checkpoint(**cache, true);
		(void)(*journal)->recordDirty(1);
		journal->reset();
		// The seed is the picker byte followed by the file.
		std::ifstream in(path, std::ios::binary);
		std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
		std::ofstream(path, std::ios::binary | std::ios::trunc) << static_cast<char>(pick) << body;
	}
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
	return r3fuzz::seedsOnRequest(writeSeeds);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const auto id = identityOf(data[0]);
	const auto &path = scratchPath();
	writeFile(path, data + 1, size - 1);
	std::vector<ChunkPhase> first;
	{
		ChunkState state(chunksOf(id));
		ReplayReport report;
		auto journal = Journal::open(path, id, state, false, report);
		if (!journal) {
			check(!journal.error().message.empty());
			::unlink(path.c_str());
			return 0;
		}
		uint64_t local = 0, dirty = 0;
		for (uint64_t i = 0; i < state.chunks(); ++i) {
			auto p = state.load(i).phase();
			check(p == ChunkPhase::Remote || p == ChunkPhase::Local || p == ChunkPhase::Dirty);
			local += p == ChunkPhase::Local;
			dirty += p == ChunkPhase::Dirty;
		}
		check(report.localChunks == local && report.dirtyChunks == dirty);
		first = phases(state);
	}
	ChunkState again(chunksOf(id));
	ReplayReport report;
	auto reopened = Journal::open(path, id, again, false, report);
	check(reopened.has_value() && phases(again) == first);
	::unlink(path.c_str());
	return 0;
}
