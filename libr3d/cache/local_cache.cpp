#include "cache/local_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include <r3d/size.hpp>

#include "backends/file_backend.hpp"
#include "backends/memory_backend.hpp"

namespace r3d::cache {

ResultMsg<std::unique_ptr<LocalCache>> LocalCache::open(const std::string &dir, const JournalIdentity &identity,
							stages::ChunkState &state, bool discard)
{
	std::unique_ptr<LocalCache> c(new LocalCache());
	if (dir.empty() || dir == "memory") {
		auto mem = backends::MemoryBackend::create(identity.size);
		if (!mem)
			return unexpectedOf(mem.error());
		c->data_ = std::move(*mem);
		return c;
	}
	auto err = [&](int code, const std::string &what) { return fail(code, fmt::format("cache {}: {}", dir, what)); };
	if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
		return err(errno, fmt::format("cannot create the directory: {}", std::strerror(errno)));
	c->dir_ = dir;
	std::string lockPath = dir + "/lock";
	c->lock_ = UniqueFd(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
	if (!c->lock_)
		return err(errno, fmt::format("not writable: {}", std::strerror(errno)));
	if (::flock(c->lock_.get(), LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			return err(EBUSY, "already in use by another mount (its lock file is held)");
		return err(errno, fmt::format("cannot lock: {}", std::strerror(errno)));
	}
	// The pid in the lock file is for people looking; the flock is what counts.
	std::string pid = std::to_string(::getpid()) + "\n";
	if (::ftruncate(c->lock_.get(), 0) == 0)
		(void)!::pwrite(c->lock_.get(), pid.data(), pid.size(), 0);

	std::string dataPath = dir + "/data";
	struct stat st {};
	uint64_t held = 0;
	bool onDevice = false; // data is (a link to) a block device: no file system to fill
	if (::stat(dataPath.c_str(), &st) == 0) {
		onDevice = S_ISBLK(st.st_mode);
		held = static_cast<uint64_t>(st.st_blocks) * 512;
		if (!discard && static_cast<uint64_t>(st.st_size) != identity.size
		    && ::access((dir + "/journal").c_str(), F_OK) == 0)
			return err(EMEDIUMTYPE, fmt::format("its data file is {} bytes, the remote region {}; start with "
							    "discard-local to throw the local state away",
							    st.st_size, identity.size));
	}
	struct statvfs vfs {};
	if (!onDevice && ::statvfs(dir.c_str(), &vfs) == 0) {
		uint64_t room = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize + held;
		if (room < identity.size)
			return err(ENOSPC, fmt::format("too small: {} free, the region needs {}", formatSize(room),
						       formatSize(identity.size)));
	}
	if (discard) {
		if (!onDevice) // the device stays; without a journal every chunk is remote again
			::unlink(dataPath.c_str());
		::unlink((dir + "/journal").c_str());
	}
	// The cache holds the region's data: readable by its owner only.
	if (UniqueFd created(::open(dataPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)); !created)
		return err(errno, fmt::format("cannot create {}: {}", dataPath, std::strerror(errno)));
	auto file = backends::FileBackend::open(dataPath, identity.size);
	if (!file)
		return err(file.error().code.value(), file.error().message);
	if ((*file)->size() != identity.size) {
		// A shorter file was extended by open(); a longer one is someone else's.
		return err(EMEDIUMTYPE, fmt::format("its data file is {} bytes, the remote region {}", (*file)->size(),
						    identity.size));
	}
	c->data_ = std::move(*file);
	auto journal = Journal::open(dir + "/journal", identity, state, discard, c->replay_);
	if (!journal)
		return unexpectedOf(journal.error());
	c->journal_ = std::move(*journal);
	return c;
}

} // namespace r3d::cache
