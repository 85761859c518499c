#pragma once

// Where a managed region's local copy lives: in memory, or in a cache directory the user
// names (cache=PATH) holding `data` (the region, sparse), `journal` (chunk states, see
// journal.hpp) and `lock` (flock: one mount of a cache at a time). A memory cache has no
// journal and does not survive the process.

#include <memory>
#include <string>

#include <r3d/read_writer_at.hpp>
#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "cache/journal.hpp"
#include "stages/chunk_state.hpp"

namespace r3d::cache {

class LocalCache
{
public:
	/// `dir` empty or "memory": in memory. Otherwise the directory is created if missing,
	/// locked, checked for room (free space plus what the cache already holds must fit the
	/// region) and its journal replayed into `state` (discarded with `discard`). `dir`/data
	/// may be a symlink to a block device of at least the region's size: the data then
	/// skips every file system (a managed mount serving swap must not wait on one).
	static ResultMsg<std::unique_ptr<LocalCache>> open(const std::string &dir, const JournalIdentity &identity,
							   stages::ChunkState &state, bool discard);

	std::shared_ptr<ReadWriterAt> data() const { return data_; }
	/// Null for a memory cache.
	Journal *journal() const { return journal_.get(); }
	bool persistent() const { return journal_ != nullptr; }
	const std::string &dir() const { return dir_; }
	const ReplayReport &replay() const { return replay_; }

private:
	LocalCache() = default;

	std::string dir_;
	UniqueFd lock_;
	std::shared_ptr<ReadWriterAt> data_;
	std::unique_ptr<Journal> journal_;
	ReplayReport replay_;
};

} // namespace r3d::cache
