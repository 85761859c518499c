#include "sync/sync_receiver.hpp"

#include <algorithm>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <r3d/log.hpp>

#include "base/file_io.hpp"
#include "stages/arbitrary_read_writer_at.hpp"
#include "sync/sync_messages.hpp"

namespace r3d::sync {

namespace {

constexpr char kJournalMagic[8] = { 'R', '3', 'S', 'J', 'R', 'N', 'L', '1' };
constexpr char kSidecarMagic[8] = { 'R', '3', 'S', 'H', 'A', 'S', 'H', '1' };
constexpr uint64_t kJournalHeader = 64;
constexpr uint64_t kCommittedOffset = 40;
constexpr uint64_t kRecordHeader = 16;
constexpr uint64_t kSidecarHeader = 64;

struct JournalHeader {
	uint64_t generation = 0;
	uint64_t size = 0;
	uint64_t chunk = 0;
	uint64_t count = 0;
	uint64_t committed = 0;
};

void put64(std::byte *p, uint64_t v)
{
	std::memcpy(p, &v, 8); // little-endian hosts only, like the rest of the on-disk formats
}

uint64_t get64(const std::byte *p)
{
	uint64_t v;
	std::memcpy(&v, p, 8);
	return v;
}

Error ioError(int err, const std::string &what)
{
	return Error{ errnoCode(err), fmt::format("{}: {}", what, std::strerror(err)) };
}

ResultMsg<void> pwriteAll(int fd, std::span<const std::byte> buf, uint64_t offset, const std::string &what)
{
	auto ok = pwriteFull(fd, buf, offset);
	if (!ok)
		return unexpectedOf(ioError(ok.error().value(), what));
	return {};
}

ResultMsg<void> preadAll(int fd, std::span<std::byte> buf, uint64_t offset, const std::string &what)
{
	auto n = preadFull(fd, buf, offset);
	if (!n)
		return unexpectedOf(ioError(n.error().value(), what));
	if (*n != buf.size())
		return fail(EIO, fmt::format("{}: the file ends early", what));
	return {};
}

ResultMsg<void> syncFd(int fd, const std::string &what)
{
	if (::fsync(fd) != 0)
		return unexpectedOf(ioError(errno, "fsync " + what));
	return {};
}

ResultMsg<void> syncDir(const std::string &dir)
{
	UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d.isValid())
		return unexpectedOf(ioError(errno, "open " + dir));
	return syncFd(d.get(), dir);
}

int64_t mtimeNs(const struct stat &st)
{
	return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

} // namespace

SyncReceiver::SyncReceiver(std::string dir, std::string name, uint64_t chunk, ReceiverOptions options,
			   ThreadPool *pool)
	: dir_(std::move(dir)), name_(std::move(name)), path_(dir_ + "/" + name_), chunk_(chunk), options_(options),
	  pool_(pool)
{
}

SyncReceiver::~SyncReceiver()
{
	abort();
}

std::string SyncReceiver::sidePath(const char *suffix) const
{
	return dir_ + "/." + name_ + suffix;
}

ResultMsg<std::unique_ptr<SyncReceiver>> SyncReceiver::open(const std::string &dir, const std::string &name,
							    uint64_t chunk, ReceiverOptions options, ThreadPool *pool,
							    ReceiverOpenReport *report)
{
	if (auto ok = checkSyncName(name); !ok)
		return unexpectedOf(ok.error());
	std::unique_ptr<SyncReceiver> r(new SyncReceiver(dir, name, chunk, options, pool));
	ReceiverOpenReport local;
	if (auto ok = r->load(report ? *report : local); !ok)
		return unexpectedOf(ok.error());
	return r;
}

ResultMsg<std::unique_ptr<SyncReceiver>> SyncReceiver::openTarget(std::shared_ptr<ReadWriterAt> target,
								  const std::string &name, uint64_t chunk,
								  ReceiverOptions options, ThreadPool *pool,
								  ReceiverOpenReport *report)
{
	if (!target)
		return fail(EINVAL, "no target");
	if (chunk == 0)
		return fail(EINVAL, "chunk size 0");
	std::unique_ptr<SyncReceiver> r(new SyncReceiver("", name, chunk, options, pool));
	r->path_ = name;
	// Any offset and length: the sync chunk need not be a multiple of the backend's.
	if (uint64_t c = target->preferredChunk(); c != 0)
		target = std::make_shared<stages::ArbitraryReadWriterAt>(target, c, true);
	r->target_ = std::move(target);
	r->size_ = r->target_->size();
	ChunkHasher hasher(pool, chunk);
	auto h = hasher.hash(*r->target_);
	if (!h)
		return unexpectedOf(h.error());
	r->hashes_ = std::move(*h);
	if (report)
		report->rehashed = true;
	return r;
}

ResultMsg<void> SyncReceiver::commitTarget()
{
	if (auto ok = target_->sync(); !ok) {
		abort();
		return fail(ok.error(), fmt::format("{}: sync: {}", path_, ok.error().message()));
	}
	if (options_.verify) {
		std::vector<std::byte> buf;
		for (const auto &e : entries_) {
			buf.resize(static_cast<size_t>(e.length));
			if (auto ok = target_->readAt(buf, e.index * chunk_); !ok) {
				abort();
				return fail(ok.error(), fmt::format("{}: verify: {}", path_, ok.error().message()));
			}
			if (!(hashBytes(buf) == e.hash)) {
				abort();
				return fail(EIO, fmt::format("{}: chunk {} reads back with another hash than was received",
							     path_, e.index));
			}
		}
	}
	pending_ = false;
	adoptPending();
	// A shorter size leaves a last chunk that the sender sent whole for the new size;
	// a longer one was refused in begin().
	entries_.clear();
	return {};
}

void SyncReceiver::adoptPending()
{
	generation_ = pendingGeneration_;
	size_ = pendingSize_;
	hashes_.resize(static_cast<size_t>(SyncShape{ size_, chunk_ }.chunks()));
	lastChanged_.clear();
	for (const auto &e : entries_) {
		hashes_[e.index] = e.hash;
		lastChanged_.push_back(e.index);
	}
}

ResultMsg<void> SyncReceiver::load(ReceiverOpenReport &report)
{
	fd_ = UniqueFd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
	if (!fd_.isValid())
		return unexpectedOf(ioError(errno, "open " + path_));
	// A clone left by a crash in rename mode was never renamed: the copy is the old one.
	::unlink(sidePath(".r3tmp").c_str());
	if (auto ok = replayJournal(report); !ok)
		return ok;
	struct stat st;
	if (::fstat(fd_.get(), &st) != 0)
		return unexpectedOf(ioError(errno, "stat " + path_));
	size_ = static_cast<uint64_t>(st.st_size);

	// The sidecar, if it describes this copy at this chunk size.
	UniqueFd side(::open(sidePath(".r3sync").c_str(), O_RDONLY | O_CLOEXEC));
	if (side.isValid()) {
		std::byte header[kSidecarHeader];
		auto n = preadFull(side.get(), header, 0);
		if (n && *n == kSidecarHeader && std::memcmp(header, kSidecarMagic, 8) == 0) {
			uint64_t generation = get64(header + 8);
			uint64_t chunk = get64(header + 16);
			uint64_t copySize = get64(header + 24);
			int64_t mtime = static_cast<int64_t>(get64(header + 32));
			uint64_t count = get64(header + 40);
			generation_ = generation;
			SyncShape shape{ size_, chunk_ };
			if (chunk == chunk_ && copySize == size_ && mtime == mtimeNs(st) && count == shape.chunks()) {
				std::vector<std::byte> raw(static_cast<size_t>(count * kHashBytes));
				auto m = preadFull(side.get(), raw, kSidecarHeader);
				if (m && *m == raw.size()) {
					hashes_.resize(static_cast<size_t>(count));
					for (uint64_t i = 0; i < count; ++i)
						hashes_[i] = getHash(raw.data() + i * kHashBytes);
					return {};
				}
			}
		}
	}
	report.rehashed = true;
	if (auto ok = rehash(); !ok)
		return ok;
	return writeSidecar();
}

ResultMsg<void> SyncReceiver::rehash()
{
	ChunkHasher hasher(pool_, chunk_);
	auto h = hasher.hashFile(fd_.get(), size_);
	if (!h)
		return unexpectedOf(h.error());
	hashes_ = std::move(*h);
	return {};
}

ResultMsg<void> SyncReceiver::writeSidecar()
{
	struct stat st;
	if (::fstat(fd_.get(), &st) != 0)
		return unexpectedOf(ioError(errno, "stat " + path_));
	std::string tmp = sidePath(".r3sync.tmp");
	UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (!fd.isValid())
		return unexpectedOf(ioError(errno, "open " + tmp));
	std::vector<std::byte> out(static_cast<size_t>(kSidecarHeader + hashes_.size() * kHashBytes));
	std::memcpy(out.data(), kSidecarMagic, 8);
	put64(out.data() + 8, generation_);
	put64(out.data() + 16, chunk_);
	put64(out.data() + 24, size_);
	put64(out.data() + 32, static_cast<uint64_t>(mtimeNs(st)));
	put64(out.data() + 40, hashes_.size());
	for (size_t i = 0; i < hashes_.size(); ++i)
		putHash(hashes_[i], out.data() + kSidecarHeader + i * kHashBytes);
	if (auto ok = pwriteAll(fd.get(), out, 0, "write " + tmp); !ok) {
		::unlink(tmp.c_str());
		return ok;
	}
	// No fsync: a sidecar lost in a crash only costs a rehash (its mtime check catches it).
	if (::rename(tmp.c_str(), sidePath(".r3sync").c_str()) != 0) {
		int err = errno;
		::unlink(tmp.c_str());
		return unexpectedOf(ioError(err, "rename " + tmp));
	}
	return {};
}

ResultMsg<void> SyncReceiver::replayJournal(ReceiverOpenReport &report)
{
	std::string path = sidePath(".r3journal");
	UniqueFd jfd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!jfd.isValid())
		return {};
	std::byte header[kJournalHeader];
	auto n = preadFull(jfd.get(), header, 0);
	bool committed = n && *n == kJournalHeader && std::memcmp(header, kJournalMagic, 8) == 0 &&
			 get64(header + kCommittedOffset) == 1;
	if (!committed) {
		r3d::log::get("sync")->warn("sync: {}: dropping an uncommitted journal (a generation that never completed)", path_);
		report.droppedJournal = true;
		::unlink(path.c_str());
		return {};
	}
	JournalHeader h{ get64(header + 8), get64(header + 16), get64(header + 24), get64(header + 32), 1 };
	SyncShape shape{ h.size, h.chunk };
	entries_.clear();
	uint64_t at = kJournalHeader;
	for (uint64_t i = 0; i < h.count; ++i) {
		std::byte rec[kRecordHeader];
		if (auto ok = preadAll(jfd.get(), rec, at, "read " + path); !ok)
			return fail(EIO, fmt::format("{}: committed journal is damaged: {}", path, ok.error().message));
		uint64_t index = get64(rec), length = get64(rec + 8);
		if (h.chunk == 0 || index >= shape.chunks() || length != shape.lengthOf(index))
			return fail(EIO, fmt::format("{}: committed journal names chunk {} of {} bytes", path, index,
						     length));
		entries_.push_back(Entry{ index, at + kRecordHeader, length, {} });
		at += kRecordHeader + length;
	}
	r3d::log::get("sync")->info("sync: {}: replaying committed generation {} ({} chunks)", path_, h.generation, h.count);
	pendingGeneration_ = h.generation;
	pendingSize_ = h.size;
	uint64_t savedChunk = chunk_;
	chunk_ = h.chunk;
	auto ok = applyInPlace(jfd.get(), true);
	chunk_ = savedChunk;
	entries_.clear();
	if (!ok)
		return ok;
	generation_ = h.generation;
	report.replayedJournal = true;
	::unlink(path.c_str());
	// The sidecar predates the replay; it is rewritten after the rehash.
	::unlink(sidePath(".r3sync").c_str());
	return {};
}

ResultMsg<void> SyncReceiver::begin(uint64_t generation, uint64_t newSize)
{
	abort();
	if (generation != generation_ + 1)
		return fail(EPROTO, fmt::format("generation {} after {}", generation, generation_));
	pendingGeneration_ = generation;
	pendingSize_ = newSize;
	entries_.clear();
	if (target_) {
		if (newSize > target_->size())
			return fail(ENOSPC, fmt::format("{}: the target holds {} bytes, the source has {}", path_,
							target_->size(), newSize));
		pending_ = true;
		return {};
	}
	if (options_.mode == ApplyMode::Journal) {
		std::string path = sidePath(".r3journal");
		pendingFd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
		if (!pendingFd_.isValid())
			return unexpectedOf(ioError(errno, "open " + path));
		std::byte header[kJournalHeader]{};
		std::memcpy(header, kJournalMagic, 8);
		put64(header + 8, generation);
		put64(header + 16, newSize);
		put64(header + 24, chunk_);
		if (auto ok = pwriteAll(pendingFd_.get(), header, 0, "write " + path); !ok) {
			abort();
			return ok;
		}
		journalEnd_ = kJournalHeader;
	} else {
		std::string tmp = sidePath(".r3tmp");
		pendingFd_ = UniqueFd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
		if (!pendingFd_.isValid())
			return unexpectedOf(ioError(errno, "open " + tmp));
		// Clone the copy (reflinks or server-side copies where the file system has them).
		uint64_t copy = std::min(size_, newSize);
		loff_t in = 0, out = 0;
		while (static_cast<uint64_t>(in) < copy) {
			ssize_t n = ::copy_file_range(fd_.get(), &in, pendingFd_.get(), &out,
						      static_cast<size_t>(copy - static_cast<uint64_t>(in)), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int err = n < 0 ? errno : EIO;
				abort();
				return unexpectedOf(ioError(err, "copy " + path_ + " to " + tmp));
			}
		}
		if (::ftruncate(pendingFd_.get(), static_cast<off_t>(newSize)) != 0) {
			int err = errno;
			abort();
			return unexpectedOf(ioError(err, "truncate " + tmp));
		}
	}
	pending_ = true;
	return {};
}

ResultMsg<void> SyncReceiver::addChunk(uint64_t index, std::span<const std::byte> data)
{
	if (!pending_)
		return fail(EPROTO, "a chunk outside a generation");
	SyncShape shape{ pendingSize_, chunk_ };
	if (index >= shape.chunks() || data.size() != shape.lengthOf(index))
		return fail(EPROTO, fmt::format("chunk {} of {} bytes does not fit the generation", index, data.size()));
	if (!entries_.empty() && index <= entries_.back().index)
		return fail(EPROTO, fmt::format("chunk {} after chunk {}: chunks come ascending", index,
						entries_.back().index));
	Entry e{ index, 0, data.size(), hashBytes(data) };
	if (target_) {
		entries_.push_back(e); // before the write: a failed one may have left part of it
		if (auto ok = target_->writeAt(data, index * chunk_); !ok) {
			abort();
			return fail(ok.error(), fmt::format("{}: write chunk {}: {}", path_, index, ok.error().message()));
		}
		return {};
	}
	if (options_.mode == ApplyMode::Journal) {
		std::byte rec[kRecordHeader];
		put64(rec, index);
		put64(rec + 8, data.size());
		std::string what = "write " + sidePath(".r3journal");
		if (auto ok = pwriteAll(pendingFd_.get(), rec, journalEnd_, what); !ok) {
			abort();
			return ok;
		}
		e.offset = journalEnd_ + kRecordHeader;
		if (auto ok = pwriteAll(pendingFd_.get(), data, e.offset, what); !ok) {
			abort();
			return ok;
		}
		journalEnd_ = e.offset + data.size();
	} else {
		if (auto ok = pwriteAll(pendingFd_.get(), data, index * chunk_, "write " + sidePath(".r3tmp")); !ok) {
			abort();
			return ok;
		}
	}
	entries_.push_back(e);
	return {};
}

ResultMsg<void> SyncReceiver::applyInPlace(int fromFd, bool fromJournal)
{
	std::vector<std::byte> buf;
	if (::ftruncate(fd_.get(), static_cast<off_t>(pendingSize_)) != 0)
		return unexpectedOf(ioError(errno, "truncate " + path_));
	for (const auto &e : entries_) {
		buf.resize(static_cast<size_t>(e.length));
		if (auto ok = preadAll(fromFd, buf, e.offset, fromJournal ? "read the journal" : "read"); !ok)
			return ok;
		if (auto ok = pwriteAll(fd_.get(), buf, e.index * chunk_, "write " + path_); !ok)
			return ok;
	}
	return syncFd(fd_.get(), path_);
}

ResultMsg<void> SyncReceiver::verifyChunks(int fd)
{
	std::vector<std::byte> buf;
	for (const auto &e : entries_) {
		buf.resize(static_cast<size_t>(e.length));
		if (auto ok = preadAll(fd, buf, e.index * chunk_, "verify " + path_); !ok)
			return ok;
		if (!(hashBytes(buf) == e.hash))
			return fail(EIO, fmt::format("{}: chunk {} reads back with another hash than was received", path_,
						     e.index));
	}
	return {};
}

ResultMsg<void> SyncReceiver::commit(uint64_t generation)
{
	if (!pending_ || generation != pendingGeneration_)
		return fail(EPROTO, fmt::format("commit of generation {} that was not begun", generation));
	if (target_)
		return commitTarget();
	if (options_.mode == ApplyMode::Journal) {
		std::string path = sidePath(".r3journal");
		std::byte count[8];
		put64(count, entries_.size());
		if (auto ok = pwriteAll(pendingFd_.get(), count, 32, "write " + path); !ok) {
			abort();
			return ok;
		}
		if (auto ok = syncFd(pendingFd_.get(), path); !ok) {
			abort();
			return ok;
		}
		std::byte one[8];
		put64(one, 1);
		if (auto ok = pwriteAll(pendingFd_.get(), one, kCommittedOffset, "commit " + path); !ok) {
			abort();
			return ok;
		}
		if (auto ok = syncFd(pendingFd_.get(), path); !ok) {
			abort();
			return ok;
		}
		// Durable from here: a crash replays the journal at the next open.
		auto ok = applyInPlace(pendingFd_.get(), true);
		if (!ok) {
			// The committed journal stays: the next open replays it.
			pending_ = false;
			pendingFd_ = UniqueFd();
			return fail(ok.error().code, ok.error().message + " (the journal is kept and replayed at the next start)");
		}
		if (options_.verify)
			if (auto v = verifyChunks(fd_.get()); !v) {
				pending_ = false;
				pendingFd_ = UniqueFd();
				return v;
			}
		pendingFd_ = UniqueFd();
		::unlink(path.c_str());
	} else {
		std::string tmp = sidePath(".r3tmp");
		if (auto ok = syncFd(pendingFd_.get(), tmp); !ok) {
			abort();
			return ok;
		}
		if (options_.verify)
			if (auto v = verifyChunks(pendingFd_.get()); !v) {
				abort();
				return v;
			}
		if (::rename(tmp.c_str(), path_.c_str()) != 0) {
			int err = errno;
			abort();
			return unexpectedOf(ioError(err, "rename " + tmp));
		}
		if (auto ok = syncDir(dir_); !ok) {
			pending_ = false;
			return ok;
		}
		fd_ = std::move(pendingFd_);
	}
	pending_ = false;
	const uint64_t oldSize = size_;
	adoptPending();
	// The sender sends a last chunk whose length changed with the size; this only guards
	// the sidecar against a sender that did not.
	if (size_ != oldSize && !hashes_.empty()) {
		uint64_t last = hashes_.size() - 1;
		std::vector<std::byte> buf(static_cast<size_t>(SyncShape{ size_, chunk_ }.lengthOf(last)));
		if (preadAll(fd_.get(), buf, last * chunk_, "read " + path_))
			hashes_[last] = hashBytes(buf);
	}
	entries_.clear();
	if (auto ok = writeSidecar(); !ok)
		r3d::log::get("sync")->warn("sync: {}: {} (the next contact rehashes)", path_, ok.error().message);
	return {};
}

void SyncReceiver::abort()
{
	if (target_) {
		// The chunks written of a generation that did not commit hold neither generation
		// for sure: a hash no chunk has makes the sender send them again.
		for (const auto &e : entries_)
			if (e.index < hashes_.size())
				hashes_[e.index] = ChunkHash{ ~0ull, ~0ull };
		entries_.clear();
		pending_ = false;
		return;
	}
	if (!pending_ && !pendingFd_.isValid())
		return;
	pending_ = false;
	pendingFd_ = UniqueFd();
	entries_.clear();
	::unlink(sidePath(options_.mode == ApplyMode::Journal ? ".r3journal" : ".r3tmp").c_str());
}

} // namespace r3d::sync
