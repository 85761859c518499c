#include "cache/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <boost/crc.hpp>
#include <fmt/format.h>

#include "base/file_io.hpp"
#include "r3d/log.hpp"

namespace r3d::cache {
namespace {

constexpr char kMagic[8] = { 'R', '3', 'M', 'J', 'R', 'N', 'L', '1' };
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderSize = 4096;
constexpr uint64_t kCommittedAt = 4080;
constexpr uint64_t kMaxRemoteLength = 4000;
constexpr uint64_t kRecordSize = 16;
constexpr uint32_t kRecordMagic = 0x52334a00; // "R3J" + kind
constexpr uint32_t kDirty = 1, kLocal = 2, kCommit = 3;
// Snapshot codes, 2 bits per chunk.
constexpr uint8_t kSnapRemote = 0, kSnapLocal = 1, kSnapDirty = 2;

auto logger()
{
	return r3d::log::get("journal");
}

uint32_t crc32(const void *data, size_t n, uint32_t seed = 0)
{
	boost::crc_32_type crc;
	crc.process_bytes(&seed, sizeof seed);
	crc.process_bytes(data, n);
	return crc.checksum();
}

template <class T>
T get(const std::byte *p)
{
	T v;
	std::memcpy(&v, p, sizeof v);
	return v;
}

template <class T>
void put(std::byte *p, T v)
{
	std::memcpy(p, &v, sizeof v);
}

uint32_t recordCrc(uint32_t kind, uint64_t value, uint64_t position)
{
	std::byte b[20];
	put(b, kind);
	put(b + 4, value);
	put(b + 12, position);
	return crc32(b, sizeof b, 0x9e3779b9);
}

void encodeRecord(std::byte *out, uint32_t kind, uint64_t value, uint64_t position)
{
	uint32_t k = kRecordMagic | kind;
	put(out, k);
	put(out + 4, recordCrc(k, value, position));
	put(out + 8, value);
}

/// The record's kind, or 0 when it is not a valid record at `position`.
uint32_t decodeRecord(const std::byte *in, uint64_t position, uint64_t &value)
{
	uint32_t k = get<uint32_t>(in);
	value = get<uint64_t>(in + 8);
	if ((k & 0xffffff00u) != kRecordMagic || get<uint32_t>(in + 4) != recordCrc(k, value, position))
		return 0;
	uint32_t kind = k & 0xff;
	return kind >= kDirty && kind <= kCommit ? kind : 0;
}

uint64_t snapshotBytes(uint64_t chunks)
{
	// 2 bits per chunk, padded so records start 16-byte aligned.
	uint64_t b = (chunks + 3) / 4;
	return (b + kRecordSize - 1) / kRecordSize * kRecordSize;
}

uint32_t committedCrc(uint64_t end)
{
	return crc32(&end, sizeof end, 0x636f6d6d);
}

Result<void> fsyncDirectoryOf(const std::string &path)
{
	auto slash = path.rfind('/');
	std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
	UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d || ::fsync(d.get()) != 0)
		return unexpected(lastErrno());
	return {};
}

} // namespace

Journal::Journal(std::string path, stages::ChunkState &state, JournalIdentity identity)
	: path_(std::move(path)), state_(state), identity_(std::move(identity)), pending_(state.chunks()),
	  unrecorded_(state.chunks())
{
}

Journal::~Journal() = default;

ResultMsg<std::unique_ptr<Journal>> Journal::open(const std::string &path, const JournalIdentity &identity,
						  stages::ChunkState &state, bool discard, ReplayReport &report)
{
	if (identity.remote.size() > kMaxRemoteLength)
		return fail(ENAMETOOLONG, "journal: the remote's URI is too long to record");
	std::unique_ptr<Journal> j(new Journal(path, state, identity));
	auto err = [&](int code, const std::string &what) {
		return fail(code, fmt::format("journal {}: {}", path, what));
	};
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd && errno != ENOENT)
		return err(errno, fmt::format("cannot open: {}", std::strerror(errno)));
	if (fd && !discard) {
		struct stat st {};
		if (::fstat(fd.get(), &st) != 0)
			return err(errno, std::strerror(errno));
		uint64_t fileSize = static_cast<uint64_t>(st.st_size);
		const char *hint = "; start with discard-local to throw the local state away";
		std::vector<std::byte> header(kHeaderSize);
		auto got = preadFull(fd.get(), header, 0);
		if (!got)
			return err(got.error().value(), "cannot read the header");
		if (*got < kHeaderSize)
			return err(EBADMSG, fmt::format("truncated: {} bytes, shorter than its header{}", *got, hint));
		uint32_t storedCrc = get<uint32_t>(header.data() + 12);
		put<uint32_t>(header.data() + 12, 0);
		if (std::memcmp(header.data(), kMagic, sizeof kMagic) != 0
		    || crc32(header.data(), kCommittedAt) != storedCrc)
			return err(EBADMSG, fmt::format("not a journal or its header is corrupt (checksum){}", hint));
		if (get<uint32_t>(header.data() + 8) != kVersion)
			return err(EPROTO, fmt::format("journal version {} is not {}", get<uint32_t>(header.data() + 8),
						       kVersion));
		uint64_t size = get<uint64_t>(header.data() + 16), chunk = get<uint64_t>(header.data() + 24);
		uint64_t chunks = get<uint64_t>(header.data() + 32), snapBytes = get<uint64_t>(header.data() + 40);
		uint32_t snapCrc = get<uint32_t>(header.data() + 48), remoteLen = get<uint32_t>(header.data() + 52);
		if (remoteLen > kMaxRemoteLength)
			return err(EBADMSG, "corrupt header (remote length)");
		std::string remote(reinterpret_cast<const char *>(header.data() + 56), remoteLen);
		if (size != identity.size)
			return err(EMEDIUMTYPE, fmt::format("the cache holds a region of {} bytes of {}, the remote now has {}{}",
							    size, remote, identity.size, hint));
		if (chunk != identity.chunk)
			return err(EMEDIUMTYPE, fmt::format("the cache was made with chunks of {} bytes, not {}{}", chunk,
							    identity.chunk, hint));
		if (remote != identity.remote)
			return err(EMEDIUMTYPE, fmt::format("the cache belongs to {}, not {}{}", remote, identity.remote, hint));
		if (chunks != state.chunks() || snapBytes != snapshotBytes(chunks))
			return err(EBADMSG, fmt::format("corrupt header (chunk count){}", hint));
		uint64_t committed = get<uint64_t>(header.data() + kCommittedAt);
		if (get<uint32_t>(header.data() + kCommittedAt + 8) != committedCrc(committed))
			return err(EBADMSG, fmt::format("corrupt header (committed length){}", hint));
		uint64_t recordsStart = kHeaderSize + snapBytes;
		if (fileSize < recordsStart || fileSize < committed)
			return err(EBADMSG, fmt::format("truncated: {} bytes, committed up to {}{}", fileSize,
							std::max(recordsStart, committed), hint));

		std::vector<std::byte> snap(snapBytes);
		got = preadFull(fd.get(), snap, kHeaderSize);
		if (!got || *got != snapBytes || crc32(snap.data(), snap.size()) != snapCrc)
			return err(EBADMSG, fmt::format("the snapshot is corrupt (checksum){}", hint));
		for (uint64_t i = 0; i < chunks; ++i) {
			uint8_t code = (static_cast<uint8_t>(snap[i / 4]) >> ((i % 4) * 2)) & 3;
			if (code == kSnapLocal)
				state.reset(i, stages::ChunkPhase::Local);
			else if (code == kSnapDirty)
				state.reset(i, stages::ChunkPhase::Dirty);
			else if (code != kSnapRemote)
				return err(EBADMSG, fmt::format("the snapshot is corrupt (chunk {}){}", i, hint));
		}

		std::vector<std::byte> block(1 << 20);
		uint64_t pos = recordsStart;
		bool torn = false;
		while (pos < fileSize && !torn) {
			uint64_t n = std::min<uint64_t>(block.size(), fileSize - pos);
			got = preadFull(fd.get(), std::span(block.data(), n), pos);
			if (!got || *got != n)
				return err(EIO, "cannot read the records");
			for (uint64_t o = 0; o < n; o += kRecordSize, pos += kRecordSize) {
				uint64_t value = 0;
				uint32_t kind = n - o < kRecordSize ? 0 : decodeRecord(block.data() + o, pos, value);
				if (kind != 0 && kind != kCommit && value >= chunks)
					kind = 0;
				if (kind == 0) {
					if (pos < committed)
						return err(EBADMSG,
							   fmt::format("corrupt record at byte {}, before the committed end {}{}",
								       pos, committed, hint));
					// A record cut short by the tear counts as one.
					report.droppedRecords = (fileSize - pos + kRecordSize - 1) / kRecordSize;
					torn = true;
					break;
				}
				if (kind == kDirty)
					state.reset(value, stages::ChunkPhase::Dirty);
				else if (kind == kLocal)
					state.reset(value, stages::ChunkPhase::Local);
			}
		}
		if (report.droppedRecords)
			logger()->warn("{}: dropped {} torn records past the last commit (writes no FLUSH acknowledged)",
				       path, report.droppedRecords);
		auto census = state.census();
		report.resumed = true;
		report.localChunks = census.local;
		report.dirtyChunks = census.dirty;
	}
	fd.reset();
	// A fresh file with the replayed state as its snapshot: compacts, and drops any torn tail.
	if (auto r = j->writeFresh(); !r)
		return err(r.error().value(), fmt::format("cannot write: {}", r.error().message()));
	return j;
}

Result<void> Journal::writeFresh()
{
	uint64_t chunks = state_.chunks();
	uint64_t snapBytes = snapshotBytes(chunks);
	std::vector<std::byte> snap(snapBytes);
	for (uint64_t i = 0; i < chunks; ++i) {
		auto w = state_.load(i);
		uint8_t code = kSnapRemote;
		if (w.dirty())
			code = kSnapDirty;
		else if (w.phase() == stages::ChunkPhase::Local && !pending_.test(i))
			code = kSnapLocal; // a pulled chunk not yet on disk stays remote
		snap[i / 4] |= static_cast<std::byte>(code << ((i % 4) * 2));
	}
	std::vector<std::byte> header(kHeaderSize);
	std::memcpy(header.data(), kMagic, sizeof kMagic);
	put<uint32_t>(header.data() + 8, kVersion);
	put<uint64_t>(header.data() + 16, identity_.size);
	put<uint64_t>(header.data() + 24, identity_.chunk);
	put<uint64_t>(header.data() + 32, chunks);
	put<uint64_t>(header.data() + 40, snapBytes);
	put<uint32_t>(header.data() + 48, crc32(snap.data(), snap.size()));
	put<uint32_t>(header.data() + 52, static_cast<uint32_t>(identity_.remote.size()));
	std::memcpy(header.data() + 56, identity_.remote.data(), identity_.remote.size());
	put<uint32_t>(header.data() + 12, crc32(header.data(), kCommittedAt));
	uint64_t end = kHeaderSize + snapBytes;
	put<uint64_t>(header.data() + kCommittedAt, end);
	put<uint32_t>(header.data() + kCommittedAt + 8, committedCrc(end));

	std::string tmp = path_ + ".new";
	UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	if (!fd)
		return unexpected(lastErrno());
	R3D_TRY(pwriteFull(fd.get(), header, 0));
	R3D_TRY(pwriteFull(fd.get(), snap, kHeaderSize));
	if (::fdatasync(fd.get()) != 0)
		return unexpected(lastErrno());
	if (::rename(tmp.c_str(), path_.c_str()) != 0)
		return unexpected(lastErrno());
	R3D_TRY(fsyncDirectoryOf(path_));
	fd_ = std::move(fd);
	recordsStart_ = end_ = end;
	return {};
}

Result<void> Journal::append(uint32_t kind, uint64_t value)
{
	std::byte rec[kRecordSize];
	encodeRecord(rec, kind, value, end_);
	R3D_TRY(pwriteFull(fd_.get(), rec, end_));
	end_ += kRecordSize;
	return {};
}

Result<void> Journal::recordDirty(uint64_t index)
{
	std::lock_guard lock(mutex_);
	auto r = append(kDirty, index);
	if (r)
		unrecorded_.clear(index);
	else
		unrecorded_.set(index);
	return r;
}

void Journal::notePulled(uint64_t index)
{
	pending_.set(index);
}

Result<void> Journal::recordClean(uint64_t index)
{
	std::lock_guard lock(mutex_);
	// Checked under the lock that orders records: a write that made the chunk dirty has
	// either recorded Dirty already (and this one is skipped) or will record it after.
	if (state_.load(index).phase() != stages::ChunkPhase::Local)
		return {};
	return append(kLocal, index);
}

Result<void> Journal::storeCommitted(uint64_t end)
{
	std::byte b[12];
	put<uint64_t>(b, end);
	put<uint32_t>(b + 8, committedCrc(end));
	return pwriteFull(fd_.get(), b, kCommittedAt);
}

Result<void> Journal::checkpoint(ReadWriterAt &cache, bool durable)
{
	std::lock_guard cp(checkpointMutex_);
	// Taken before the cache sync, so every chunk taken was written to the cache before it.
	auto pulled = pending_.take();
	if (!pulled.empty() || durable)
		R3D_TRY(cache.sync());
	std::lock_guard lock(mutex_);
	for (uint64_t i : pulled)
		if (state_.load(i).phase() == stages::ChunkPhase::Local)
			R3D_TRY(append(kLocal, i));
	if (durable) {
		R3D_TRY(append(kCommit, end_));
		if (::fdatasync(fd_.get()) != 0)
			return unexpected(lastErrno());
		R3D_TRY(storeCommitted(end_));
		if (::fdatasync(fd_.get()) != 0)
			return unexpected(lastErrno());
	}
	uint64_t records = (end_ - recordsStart_) / kRecordSize;
	if (records > 65536 && records > state_.chunks() / 4)
		R3D_TRY(writeFresh());
	return {};
}

uint64_t Journal::bytes() const
{
	std::lock_guard lock(mutex_);
	return end_;
}

} // namespace r3d::cache
