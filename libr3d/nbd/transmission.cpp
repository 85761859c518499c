// Session, part 3: the transmission phase. The request loop reads and validates; requests
// run inline (fast backends, replies batched) or on the server's workers, whose replies a
// writer thread sends. Construction and lifecycle are in session.cpp, the handshake in
// handshake.cpp.

#include "nbd/session.hpp"

#include <algorithm>
#include <memory>
#include <thread>

#include <sys/socket.h>

#include <r3d/log.hpp>

#include "base/thread_pool.hpp"
#include "nbd/errors.hpp"
#include "nbd/meta_source.hpp"
#include "nbd/wire.hpp"

namespace r3d::nbd {

namespace {

using wire::get16;
using wire::get32;
using wire::get64;
using wire::put16;

// Inline replies are batched up to this size before being sent.
constexpr size_t kBatchLimit = 1024 * 1024;
// Reads at least this large are checked for holes to send as OFFSET_HOLE chunks.
constexpr uint32_t kSparseReadMin = 64 * 1024;
// Internal: "no holes here, send one data chunk"; never goes on the wire.
constexpr uint32_t kEagain = 0xffffffff;
// Extents in one BLOCK_STATUS chunk of a meta context at most (the protocol's advice).
constexpr size_t kMaxChunkExtents = size_t{ 1 } << 20;

std::shared_ptr<spdlog::logger> logger()
{
	static auto l = log::get("nbd");
	return l;
}

void appendSimpleHeader(std::vector<std::byte> &out, uint32_t error, uint64_t handle)
{
	wire::Writer(out).u32(kSimpleReplyMagic).u32(error).u64(handle);
}

void appendChunkHeader(std::vector<std::byte> &out, uint16_t flags, ReplyType type, uint64_t handle,
		       uint32_t length)
{
	wire::Writer(out).u32(kStructuredReplyMagic).u16(flags).u16(static_cast<uint16_t>(type)).u64(handle).u32(length);
}

// One BLOCK_STATUS chunk (flags 0) of meta context `id` from a MetaSource's extents,
// fitted to what the wire allows: no empty extents, equal neighbours merged, nothing past
// the request, one extent for REQ_ONE. Returns false, appending nothing, if none is left.
bool appendMetaChunk(std::vector<std::byte> &out, uint64_t handle, uint32_t id, uint32_t length, bool reqOne,
		     const std::vector<MetaExtent> &extents)
{
	std::vector<MetaExtent> fitted;
	uint64_t covered = 0;
	for (const auto &e : extents) {
		uint64_t len = std::min<uint64_t>(e.length, length - covered);
		if (len == 0)
			continue;
		if (!fitted.empty() && fitted.back().flags == e.flags)
			fitted.back().length += len;
		else if (fitted.size() == (reqOne ? 1 : kMaxChunkExtents))
			break;
		else
			fitted.push_back({ len, e.flags });
		covered += len;
		if (covered == length)
			break;
	}
	if (fitted.empty())
		return false;
	appendChunkHeader(out, 0, ReplyType::BlockStatus, handle, static_cast<uint32_t>(4 + 8 * fitted.size()));
	wire::Writer w(out);
	w.u32(id);
	for (const auto &e : fitted)
		w.u32(static_cast<uint32_t>(e.length)).u32(e.flags);
	return true;
}

} // namespace

Session::Verdict Session::validate(const Request &r) const
{
	uint16_t allowed = kCmdFlagFua;
	bool write = false;
	bool payloadCapped = false;
	switch (static_cast<Cmd>(r.type)) {
	case Cmd::Read:
		allowed |= structured_ ? kCmdFlagDf : 0;
		payloadCapped = true;
		break;
	case Cmd::Write:
		write = payloadCapped = true;
		break;
	case Cmd::Trim:
		write = true;
		break;
	case Cmd::WriteZeroes:
		allowed |= kCmdFlagNoHole | kCmdFlagFastZero;
		write = true;
		break;
	case Cmd::BlockStatus:
		allowed |= kCmdFlagReqOne;
		if (!structured_)
			return { kEinval, "block status needs structured replies" };
		if (!metaBaseAllocation_ && metaContexts_.empty())
			return { kEinval, "block status needs a meta context" };
		if (r.length == 0)
			return { kEinval, "block status of zero length" };
		break;
	case Cmd::Flush:
		if (r.flags & ~allowed)
			return { kEinval, "unsupported flags for this command" };
		return {};
	case Cmd::Cache:
		break;
	default:
		return { kEinval, "unknown command" };
	}
	if (r.flags & ~allowed)
		return { kEinval, "unsupported flags for this command" };
	if (write && export_->readOnly)
		return { kEperm, "write to a read-only export" };
	if (payloadCapped && r.length > server_.options().maxPayload)
		return { kEinval, "length exceeds the maximum payload" };
	if (!checkRange(r.offset, r.length, export_->backend->size(), write))
		return { write ? kEnospc : kEinval, "request beyond the end of the export" };
	// A fast zero cannot also promise allocated zeros (NO_HOLE) without writing them.
	if ((r.flags & kCmdFlagFastZero) && (r.flags & kCmdFlagNoHole))
		return { kEnotsup, "fast zero cannot honour NO_HOLE" };
	if ((r.flags & kCmdFlagFastZero) && !export_->backend->canFastZero())
		return { kEnotsup, "the export cannot zero fast" };
	return {};
}

void Session::appendError(const Request &r, uint32_t error, std::vector<std::byte> &out)
{
	server_.counters_.errors.fetch_add(1, std::memory_order_relaxed);
	if (!structured_) {
		appendSimpleHeader(out, error, r.handle);
		return;
	}
	std::string_view text = errorText(error);
	appendChunkHeader(out, kReplyFlagDone, ReplyType::Error, r.handle, static_cast<uint32_t>(6 + text.size()));
	wire::Writer(out).u32(error).u16(static_cast<uint16_t>(text.size())).str(text);
}

void Session::replyDone(const Request &r, uint32_t error, std::vector<std::byte> &out)
{
	if (error)
		appendError(r, error, out);
	else
		appendSimpleHeader(out, 0, r.handle); // allowed for payload-free replies even when structured
}

void Session::countRequest(const Request &r)
{
	auto &c = server_.counters_;
	switch (static_cast<Cmd>(r.type)) {
	case Cmd::Read:
		c.reads.fetch_add(1, std::memory_order_relaxed);
		c.bytesRead.fetch_add(r.length, std::memory_order_relaxed);
		break;
	case Cmd::Write:
		c.writes.fetch_add(1, std::memory_order_relaxed);
		c.bytesWritten.fetch_add(r.length, std::memory_order_relaxed);
		break;
	case Cmd::Flush:
		c.flushes.fetch_add(1, std::memory_order_relaxed);
		break;
	case Cmd::Trim:
		c.trims.fetch_add(1, std::memory_order_relaxed);
		break;
	case Cmd::WriteZeroes:
		c.writeZeroes.fetch_add(1, std::memory_order_relaxed);
		break;
	case Cmd::Cache:
		c.caches.fetch_add(1, std::memory_order_relaxed);
		break;
	case Cmd::BlockStatus:
		c.blockStatus.fetch_add(1, std::memory_order_relaxed);
		break;
	default:
		break;
	}
}

uint32_t Session::readSparse(const Request &r, std::vector<std::byte> &out)
{
	auto &backend = *export_->backend;
	auto extents = backend.extents(r.offset, r.length);
	if (!extents)
		return toNbdError(extents.error());
	// Runs of equal zero-ness become one chunk each; what the extents leave out is data.
	std::vector<std::pair<uint64_t, bool>> runs;
	uint64_t covered = 0;
	for (const auto &e : *extents) {
		uint64_t len = std::min<uint64_t>(e.length, r.length - covered);
		if (len == 0)
			break;
		if (!runs.empty() && runs.back().second == e.zero)
			runs.back().first += len;
		else
			runs.emplace_back(len, e.zero);
		covered += len;
	}
	if (covered < r.length) {
		if (!runs.empty() && !runs.back().second)
			runs.back().first += r.length - covered;
		else
			runs.emplace_back(r.length - covered, false);
	}
	if (runs.size() == 1 && !runs[0].second)
		return kEagain;

	size_t lastHeader = out.size();
	uint64_t pos = r.offset;
	for (const auto &[len, zero] : runs) {
		lastHeader = out.size();
		if (zero) {
			appendChunkHeader(out, 0, ReplyType::OffsetHole, r.handle, 12);
			wire::Writer(out).u64(pos).u32(static_cast<uint32_t>(len));
		} else {
			appendChunkHeader(out, 0, ReplyType::OffsetData, r.handle, static_cast<uint32_t>(8 + len));
			wire::Writer(out).u64(pos);
			size_t at = out.size();
			out.resize(at + len);
			auto rr = backend.readAt(std::span(out.data() + at, len), pos);
			if (!rr)
				return toNbdError(rr.error());
		}
		pos += len;
	}
	put16(out.data() + lastHeader + 4, kReplyFlagDone);
	return 0;
}

void Session::executeRead(const Request &r, std::vector<std::byte> &out)
{
	auto &backend = *export_->backend;
	size_t start = out.size();
	uint32_t error = 0;
	if (!structured_) {
		appendSimpleHeader(out, 0, r.handle);
		size_t at = out.size();
		out.resize(at + r.length);
		auto rr = backend.readAt(std::span(out.data() + at, r.length), r.offset);
		if (rr)
			return;
		error = toNbdError(rr.error());
	} else if (r.length == 0) {
		appendChunkHeader(out, kReplyFlagDone, ReplyType::None, r.handle, 0);
		return;
	} else if (r.length >= kSparseReadMin && !(r.flags & kCmdFlagDf) &&
		   (error = readSparse(r, out)) != kEagain) {
		if (!error)
			return;
	} else {
		error = 0;
		out.resize(start);
		appendChunkHeader(out, kReplyFlagDone, ReplyType::OffsetData, r.handle, 8 + r.length);
		wire::Writer(out).u64(r.offset);
		size_t at = out.size();
		out.resize(at + r.length);
		auto rr = backend.readAt(std::span(out.data() + at, r.length), r.offset);
		if (rr)
			return;
		error = toNbdError(rr.error());
	}
	// Nothing of this reply has been sent yet, so it can be replaced by the error alone.
	out.resize(start);
	appendError(r, error, out);
}

void Session::executeBlockStatus(const Request &r, std::vector<std::byte> &out)
{
	// One chunk per selected context, in id order; the last one carries DONE. Nothing is
	// sent before all are built, so a failure replaces them with one error.
	size_t start = out.size();
	size_t lastHeader = start;
	bool reqOne = r.flags & kCmdFlagReqOne;
	auto fail = [&](uint32_t error) {
		out.resize(start);
		appendError(r, error, out);
	};
	if (metaBaseAllocation_) {
		auto extents = export_->backend->extents(r.offset, r.length);
		if (!extents || extents->empty())
			return fail(extents ? kEio : toNbdError(extents.error()));
		size_t count = reqOne ? 1 : extents->size();
		appendChunkHeader(out, 0, ReplyType::BlockStatus, r.handle, static_cast<uint32_t>(4 + 8 * count));
		wire::Writer w(out);
		w.u32(kMetaIdBaseAllocation);
		for (size_t i = 0; i < count; ++i) {
			const auto &e = (*extents)[i];
			w.u32(static_cast<uint32_t>(std::min<uint64_t>(e.length, r.length)))
				.u32((e.hole ? kStateHole : 0) | (e.zero ? kStateZero : 0));
		}
	}
	for (size_t index : metaContexts_) {
		auto extents = export_->meta->metaExtents(index, r.offset, r.length);
		if (!extents)
			return fail(toNbdError(extents.error()));
		size_t header = out.size();
		uint32_t id = kMetaIdFirstSource + static_cast<uint32_t>(index);
		if (!appendMetaChunk(out, r.handle, id, r.length, reqOne, *extents)) {
			logger()->debug("meta context {}: no extent for offset {} length {}", id, r.offset, r.length);
			return fail(kEio);
		}
		lastHeader = header;
	}
	put16(out.data() + lastHeader + 4, kReplyFlagDone);
}

void Session::execute(const Request &r, std::span<const std::byte> payload, std::vector<std::byte> &out)
{
	auto &backend = *export_->backend;
	bool fua = r.flags & kCmdFlagFua;
	Result<void> result;
	switch (static_cast<Cmd>(r.type)) {
	case Cmd::Read:
		executeRead(r, out);
		return;
	case Cmd::BlockStatus:
		executeBlockStatus(r, out);
		return;
	case Cmd::Write:
		result = backend.writeAt(payload, r.offset);
		break;
	case Cmd::Flush:
		result = backend.sync();
		fua = false;
		break;
	case Cmd::Trim:
		result = backend.trim(r.offset, r.length);
		break;
	case Cmd::WriteZeroes:
		// NO_HOLE asks for allocated zeros: write them instead of punching a hole.
		if (r.flags & kCmdFlagFastZero)
			result = backend.writeZeroesFast(r.offset, r.length);
		else if (r.flags & kCmdFlagNoHole)
			result = backend.ReadWriterAt::writeZeroes(r.offset, r.length);
		else
			result = backend.writeZeroes(r.offset, r.length);
		break;
	case Cmd::Cache:
		result = backend.cache(r.offset, r.length);
		fua = false;
		break;
	default:
		result = unexpected(EINVAL);
		break;
	}
	if (result && fua)
		result = backend.sync();
	replyDone(r, result ? 0 : toNbdError(result.error()), out);
}

void Session::sendLocked(std::span<const std::byte> bytes)
{
	std::lock_guard lock(sendMutex_);
	if (sendFailed_)
		return;
	if (auto sent = send(bytes); !sent) {
		// The client is gone or does not read; stop reading so the session winds down.
		logger()->debug("dropping a client: {}", sent.error().message());
		sendFailed_ = true;
		::shutdown(fd_.get(), SHUT_RDWR);
	}
}

void Session::flushBatch()
{
	if (batch_.empty())
		return;
	sendLocked(batch_);
	batch_.clear();
	if (batch_.capacity() > 4 * kBatchLimit)
		batch_.shrink_to_fit();
}

void Session::waitForWindow(size_t bytes)
{
	// Bound both the count and the memory of one connection's requests in flight (one
	// request always fits), then take the bytes from the server-wide budget.
	size_t maxBytes = std::max<size_t>(64 * 1024 * 1024, server_.options().maxPayload);
	{
		std::unique_lock lock(flightMutex_);
		flightCond_.wait(lock, [&] {
			return inFlight_ == 0 ||
			       (inFlight_ < server_.options().maxInFlight && inFlightBytes_ + bytes <= maxBytes);
		});
		++inFlight_;
		inFlightBytes_ += bytes;
	}
	server_.acquireBuffers(bytes);
}

void Session::finishWorker(size_t bytes)
{
	server_.releaseBuffers(bytes);
	std::lock_guard lock(flightMutex_);
	--inFlight_;
	inFlightBytes_ -= bytes;
	flightCond_.notify_all();
}

void Session::dispatchToWorker(const Request &r, BufferPool::Lease payload, size_t bytes)
{
	auto job = std::make_shared<BufferPool::Lease>(std::move(payload));
	server_.workers().post([this, r, job, bytes]() mutable {
		// A read's reply holds its data: room for all of it, so the reply is not grown
		// (and copied) while the backend fills it.
		bool read = static_cast<Cmd>(r.type) == Cmd::Read;
		auto reply = buffers_.acquire(64 + (read ? r.length : 0));
		reply.bytes().clear();
		execute(r, job->bytes(), reply.bytes());
		job.reset();
		std::lock_guard lock(replyMutex_);
		replies_.push_back(PendingReply{ std::move(reply), bytes });
		replyCond_.notify_one();
	});
}

void Session::writerLoop()
{
	for (;;) {
		PendingReply next;
		{
			std::unique_lock lock(replyMutex_);
			replyCond_.wait(lock, [this] { return writerDone_ || !replies_.empty(); });
			if (replies_.empty())
				return;
			next = std::move(replies_.front());
			replies_.pop_front();
		}
		sendLocked(next.bytes.bytes());
		size_t budget = next.budget;
		next.bytes = {}; // back to the pool before the count drops and the session may end
		finishWorker(budget);
	}
}

void Session::markWrite(const Request &r)
{
	switch (static_cast<Cmd>(r.type)) {
	case Cmd::Write:
	case Cmd::Trim:
	case Cmd::WriteZeroes:
		wrote_ = true;
		break;
	default:
		break;
	}
}

Result<void> Session::transmission()
{
	inline_ = export_->backend->isFast();
	logger()->debug("transmission on export '{}' ({} structured replies, {})", export_->name,
			structured_ ? "with" : "without", inline_ ? "inline" : "worker pool");
	std::thread writer;
	if (!inline_)
		writer = std::thread([this] { writerLoop(); });

	Result<void> status;
	for (;;) {
		auto got = reader_.fill(kRequestHeaderSize);
		if (!got) {
			status = unexpected(got.error());
			break;
		}
		if (!*got)
			break;
		const std::byte *h = reader_.data();
		uint32_t magic = get32(h);
		Request r{ get16(h + 4), get16(h + 6), get64(h + 8), get64(h + 16), get32(h + 24) };
		reader_.consume(kRequestHeaderSize);
		if (magic != kRequestMagic) {
			logger()->warn("bad request magic {:#x}; closing the connection", magic);
			break;
		}
		if (r.type == static_cast<uint16_t>(Cmd::Disc)) {
			sawDisc_ = true;
			break;
		}

		bool isWrite = r.type == static_cast<uint16_t>(Cmd::Write);
		auto [error, reason] = validate(r);
		if (error) {
			logger()->debug("{} offset {} length {} flags {:#x}: invalid request: {}", commandName(r.type),
					r.offset, r.length, r.flags, reason);
			// Skip a rejected write's payload so the stream stays in step; nothing is stored.
			if (isWrite && !reader_.discard(r.length).value_or(false))
				break;
			std::vector<std::byte> reply;
			appendError(r, error, inline_ ? batch_ : reply);
			if (!inline_)
				sendLocked(reply);
			continue;
		}
		countRequest(r);
		markWrite(r);
		bool carriesData = isWrite || r.type == static_cast<uint16_t>(Cmd::Read);
		size_t budget = carriesData ? r.length : 0;

		if (inline_) {
			// Small requests live in the read buffer and the reply batch; only large ones
			// draw on the server-wide memory budget.
			size_t big = budget > kReaderBuffer ? budget : 0;
			server_.acquireBuffers(big);
			std::span<const std::byte> payload;
			BufferPool::Lease lease;
			bool ok = true;
			if (isWrite && r.length <= kReaderBuffer) {
				ok = reader_.fill(r.length).value_or(false);
				payload = std::span(reader_.data(), ok ? r.length : 0);
			} else if (isWrite) {
				lease = buffers_.acquire(r.length);
				lease.bytes().resize(r.length);
				ok = reader_.read(lease.bytes()).value_or(false);
				payload = lease.bytes();
			}
			if (ok) {
				execute(r, payload, batch_);
				if (isWrite && r.length <= kReaderBuffer)
					reader_.consume(r.length);
				if (batch_.size() >= kBatchLimit)
					flushBatch();
			}
			lease = {};
			server_.releaseBuffers(big);
			if (!ok)
				break;
			continue;
		}

		waitForWindow(budget);
		BufferPool::Lease payload;
		if (isWrite) {
			payload = buffers_.acquire(r.length);
			payload.bytes().resize(r.length);
			if (!reader_.read(payload.bytes()).value_or(false)) {
				payload = {};
				finishWorker(budget);
				break;
			}
		}
		dispatchToWorker(r, std::move(payload), budget);
	}

	// Finish what is in flight, then make every acknowledged change durable.
	flushBatch();
	{
		std::unique_lock lock(flightMutex_);
		flightCond_.wait(lock, [this] { return inFlight_ == 0; });
	}
	if (writer.joinable()) {
		{
			std::lock_guard lock(replyMutex_);
			writerDone_ = true;
		}
		replyCond_.notify_one();
		writer.join();
	}
	if (wrote_ && !export_->readOnly) {
		auto synced = export_->backend->sync();
		if (!synced)
			logger()->error("flushing export '{}' at disconnect failed: {}", export_->name,
					synced.error().message());
	}
	return status;
}

} // namespace r3d::nbd
