#include "nbd/session.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <r3d/log.hpp>

#include "base/thread_pool.hpp"
#include "nbd/wire.hpp"

namespace r3d::nbd {

namespace {

using wire::get16;
using wire::get32;
using wire::get64;
using wire::put16;
using wire::put32;
using wire::put64;

// Options carry at most a few strings of ≤ 4 KiB; anything larger is not a real client.
constexpr uint32_t kMaxOptionData = 64 * 1024;
constexpr size_t kReaderBuffer = 256 * 1024;
// Inline replies are batched up to this size before being sent.
constexpr size_t kBatchLimit = 1024 * 1024;
// Reads at least this large are checked for holes to send as OFFSET_HOLE chunks.
constexpr uint32_t kSparseReadMin = 64 * 1024;
// Internal: "no holes here, send one data chunk"; never goes on the wire.
constexpr uint32_t kEagain = 0xffffffff;

std::shared_ptr<spdlog::logger> logger()
{
	static auto l = log::get("nbd");
	return l;
}

// The protocol allows only a few errno values on the wire.
uint32_t toNbdError(std::error_code ec)
{
	switch (ec.value()) {
	case EPERM:
	case EROFS:
		return kEperm;
	case ENOMEM:
		return kEnomem;
	case EINVAL:
		return kEinval;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return kEnospc;
	case EOVERFLOW:
		return kEoverflow;
	case ENOTSUP:
		return kEnotsup;
	case ESHUTDOWN:
		return kEshutdown;
	default:
		return kEio;
	}
}

const char *errorText(uint32_t error)
{
	switch (error) {
	case kEperm:
		return "operation not permitted (read-only export)";
	case kEinval:
		return "invalid request";
	case kEnospc:
		return "request beyond the end of the export";
	case kEoverflow:
		return "value too large";
	case kEnotsup:
		return "fast zeroing is not supported";
	case kEshutdown:
		return "server is shutting down";
	case kEnomem:
		return "out of memory";
	default:
		return "input/output error";
	}
}

const char *commandName(uint16_t type)
{
	switch (static_cast<Cmd>(type)) {
	case Cmd::Read:
		return "READ";
	case Cmd::Write:
		return "WRITE";
	case Cmd::Disc:
		return "DISC";
	case Cmd::Flush:
		return "FLUSH";
	case Cmd::Trim:
		return "TRIM";
	case Cmd::Cache:
		return "CACHE";
	case Cmd::WriteZeroes:
		return "WRITE_ZEROES";
	case Cmd::BlockStatus:
		return "BLOCK_STATUS";
	}
	return "unknown";
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

void setTcpNoDelay(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && (domain == AF_INET || domain == AF_INET6)) {
		int one = 1;
		::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

void setReceiveTimeout(int fd, std::chrono::milliseconds timeout)
{
	timeval tv{};
	tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
	tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
	::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

} // namespace

Session::Session(Server &server, UniqueFd fd)
	: server_(server), fd_(std::move(fd)), reader_(fd_.get(), kReaderBuffer, [this] { flushBatch(); }),
	  buffers_(server.options().maxInFlight + 4, 4 * 1024 * 1024)
{
	setTcpNoDelay(fd_.get());
}

void Session::stop()
{
	::shutdown(fd_.get(), SHUT_RD);
}

Result<void> Session::run()
{
	setReceiveTimeout(fd_.get(), server_.options().handshakeTimeout);
	auto go = handshake();
	if (!go)
		return unexpected(go.error());
	if (!*go)
		return {};
	setReceiveTimeout(fd_.get(), std::chrono::milliseconds(0));
	return transmission();
}

Result<void> Session::runTransmission(const Export &exp)
{
	export_ = &exp;
	return transmission();
}

// ---------------------------------------------------------------------------- handshake

Result<void> Session::sendOptReply(uint32_t opt, Rep type, std::span<const std::byte> data)
{
	std::vector<std::byte> msg;
	msg.reserve(20 + data.size());
	wire::Writer(msg).u64(kOptReplyMagic).u32(opt).u32(static_cast<uint32_t>(type)).u32(
		static_cast<uint32_t>(data.size()));
	msg.insert(msg.end(), data.begin(), data.end());
	return sendAll(fd_.get(), msg);
}

Result<void> Session::sendOptError(uint32_t opt, Rep type, const std::string &message)
{
	logger()->debug("option {}: error {:#x}: {}", opt, static_cast<uint32_t>(type), message);
	return sendOptReply(opt, type, std::as_bytes(std::span(message)));
}

Result<void> Session::sendExportInfo(uint32_t opt, const Export &exp, Info info)
{
	std::vector<std::byte> payload;
	wire::Writer w(payload);
	w.u16(static_cast<uint16_t>(info));
	switch (info) {
	case Info::Export:
		w.u64(exp.backend->size()).u16(server_.transmissionFlags(exp, structured_));
		break;
	case Info::Name:
		w.str(exp.name);
		break;
	case Info::Description:
		w.str(exp.description);
		break;
	case Info::BlockSize:
		w.u32(1).u32(server_.options().preferredBlockSize).u32(server_.options().maxPayload);
		break;
	}
	return sendOptReply(opt, Rep::Info, payload);
}

Result<bool> Session::handshake()
{
	std::array<std::byte, 18> hello{};
	put64(hello.data(), kInitPasswd);
	put64(hello.data() + 8, kIHaveOpt);
	put16(hello.data() + 16, kFlagFixedNewstyle | kFlagNoZeroes);
	R3D_TRY(sendAll(fd_.get(), hello));

	auto got = reader_.fill(4);
	if (!got)
		return unexpected(got.error());
	if (!*got)
		return false;
	uint32_t clientFlags = get32(reader_.data());
	reader_.consume(4);
	if (clientFlags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) {
		logger()->warn("client sent unknown handshake flags {:#x}; closing", clientFlags);
		return false;
	}
	noZeroes_ = clientFlags & kClientFlagNoZeroes;

	for (;;) {
		got = reader_.fill(16);
		if (!got)
			return unexpected(got.error());
		if (!*got)
			return false;
		uint64_t magic = get64(reader_.data());
		uint32_t opt = get32(reader_.data() + 8);
		uint32_t length = get32(reader_.data() + 12);
		reader_.consume(16);
		if (magic != kIHaveOpt) {
			logger()->warn("bad option magic {:#x}; closing", magic);
			return false;
		}
		if (length > kMaxOptionData) {
			logger()->warn("option {} declares {} bytes of data (limit {}); closing", opt, length,
				       kMaxOptionData);
			return false;
		}
		std::vector<std::byte> data(length);
		got = reader_.read(data);
		if (!got)
			return unexpected(got.error());
		if (!*got)
			return false;
		auto step = handleOption(opt, data);
		if (!step)
			return unexpected(step.error());
		if (*step == Step::Close)
			return false;
		if (*step == Step::Transmit)
			return true;
	}
}

Result<Session::Step> Session::handleOption(uint32_t opt, std::vector<std::byte> &data)
{
	if (server_.stopping() && opt != static_cast<uint32_t>(Opt::Abort)) {
		R3D_TRY(sendOptError(opt, Rep::ErrShutdown, "server is shutting down"));
		return Step::Continue;
	}
	switch (static_cast<Opt>(opt)) {
	case Opt::ExportName: {
		std::string name(reinterpret_cast<const char *>(data.data()), data.size());
		const Export *exp = server_.findExport(name);
		if (!exp) {
			// EXPORT_NAME cannot return an error: the protocol says to close.
			logger()->info("client asked for unknown export '{}'; closing", name);
			return Step::Close;
		}
		export_ = exp;
		std::vector<std::byte> reply;
		wire::Writer(reply).u64(exp->backend->size()).u16(server_.transmissionFlags(*exp, structured_));
		if (!noZeroes_)
			reply.resize(reply.size() + 124);
		R3D_TRY(sendAll(fd_.get(), reply));
		return Step::Transmit;
	}
	case Opt::Abort:
		// The client may already have hung up; a failed ACK does not matter.
		(void)sendOptReply(opt, Rep::Ack);
		return Step::Close;
	case Opt::List: {
		if (!data.empty()) {
			R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "NBD_OPT_LIST takes no data"));
			return Step::Continue;
		}
		for (const auto &exp : server_.exports()) {
			std::vector<std::byte> payload;
			wire::Writer(payload).u32(static_cast<uint32_t>(exp.name.size())).str(exp.name).str(exp.description);
			R3D_TRY(sendOptReply(opt, Rep::Server, payload));
		}
		R3D_TRY(sendOptReply(opt, Rep::Ack));
		return Step::Continue;
	}
	case Opt::Info:
	case Opt::Go:
		return handleInfo(opt, data);
	case Opt::StructuredReply:
		if (!data.empty()) {
			R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data"));
			return Step::Continue;
		}
		structured_ = true;
		R3D_TRY(sendOptReply(opt, Rep::Ack));
		return Step::Continue;
	case Opt::ListMetaContext:
	case Opt::SetMetaContext:
		return handleMetaContext(opt, data);
	default:
		R3D_TRY(sendOptError(opt, Rep::ErrUnsup, "option not supported by r3map"));
		return Step::Continue;
	}
}

Result<Session::Step> Session::handleInfo(uint32_t opt, const std::vector<std::byte> &data)
{
	// u32 name length, name, u16 request count, u16 requests...
	if (data.size() < 6) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "option data too short"));
		return Step::Continue;
	}
	uint32_t nameLength = get32(data.data());
	if (nameLength > kMaxStringLength || nameLength > data.size() - 6) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "export name length does not fit the option"));
		return Step::Continue;
	}
	std::string name(reinterpret_cast<const char *>(data.data()) + 4, nameLength);
	uint16_t count = get16(data.data() + 4 + nameLength);
	if (data.size() != 6 + nameLength + 2 * size_t{ count }) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "information request list does not fit the option"));
		return Step::Continue;
	}
	const Export *exp = server_.findExport(name);
	if (!exp) {
		R3D_TRY(sendOptError(opt, Rep::ErrUnknown, "no export named '" + name + "'"));
		return Step::Continue;
	}
	bool wantName = false, wantDescription = false;
	for (uint16_t i = 0; i < count; ++i) {
		auto info = static_cast<Info>(get16(data.data() + 6 + nameLength + 2 * i));
		wantName |= info == Info::Name;
		wantDescription |= info == Info::Description;
	}
	R3D_TRY(sendExportInfo(opt, *exp, Info::Export));
	if (wantName)
		R3D_TRY(sendExportInfo(opt, *exp, Info::Name));
	if (wantDescription && !exp->description.empty())
		R3D_TRY(sendExportInfo(opt, *exp, Info::Description));
	R3D_TRY(sendExportInfo(opt, *exp, Info::BlockSize));
	R3D_TRY(sendOptReply(opt, Rep::Ack));
	if (static_cast<Opt>(opt) == Opt::Info)
		return Step::Continue;
	export_ = exp;
	if (metaExport_ != exp->name && server_.findExport(metaExport_) != exp)
		metaBaseAllocation_ = false; // contexts were chosen for another export
	return Step::Transmit;
}

Result<Session::Step> Session::handleMetaContext(uint32_t opt, const std::vector<std::byte> &data)
{
	bool set = static_cast<Opt>(opt) == Opt::SetMetaContext;
	logger()->debug("meta context option {} ({} bytes)", opt, data.size());
	if (!structured_) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "negotiate structured replies first"));
		return Step::Continue;
	}
	// u32 name length, name, u32 query count, {u32 length, query}...
	size_t pos = 0;
	auto take32 = [&](uint32_t &v) {
		if (data.size() - pos < 4)
			return false;
		v = get32(data.data() + pos);
		pos += 4;
		return true;
	};
	auto takeString = [&](std::string &s) {
		uint32_t n = 0;
		if (!take32(n) || n > kMaxStringLength || data.size() - pos < n)
			return false;
		s.assign(reinterpret_cast<const char *>(data.data()) + pos, n);
		pos += n;
		return true;
	};
	std::string name;
	uint32_t count = 0;
	std::vector<std::string> queries;
	bool ok = takeString(name) && take32(count);
	for (uint32_t i = 0; ok && i < count; ++i) {
		std::string q;
		ok = takeString(q);
		queries.push_back(std::move(q));
	}
	if (!ok || pos != data.size()) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "malformed meta context option"));
		return Step::Continue;
	}
	if (!server_.findExport(name)) {
		R3D_TRY(sendOptError(opt, Rep::ErrUnknown, "no export named '" + name + "'"));
		return Step::Continue;
	}
	bool base = false;
	if (!set && queries.empty())
		base = true;
	for (const auto &q : queries)
		base |= q == kMetaBaseAllocation || (!set && q == "base:");
	if (set) {
		metaBaseAllocation_ = base;
		metaExport_ = name;
	}
	if (base) {
		std::vector<std::byte> payload;
		wire::Writer(payload).u32(set ? kMetaIdBaseAllocation : 0).str(kMetaBaseAllocation);
		R3D_TRY(sendOptReply(opt, Rep::MetaContext, payload));
	}
	R3D_TRY(sendOptReply(opt, Rep::Ack));
	return Step::Continue;
}

// ---------------------------------------------------------------------------- transmission

uint32_t Session::validate(const Request &r) const
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
		if (!structured_ || !metaBaseAllocation_ || r.length == 0)
			return kEinval;
		break;
	case Cmd::Flush:
		return (r.flags & ~allowed) ? kEinval : 0;
	case Cmd::Cache:
		break;
	default:
		return kEinval;
	}
	if (r.flags & ~allowed)
		return kEinval;
	if (write && export_->readOnly)
		return kEperm;
	if (payloadCapped && r.length > server_.options().maxPayload)
		return kEinval;
	if (!checkRange(r.offset, r.length, export_->backend->size(), write))
		return write ? kEnospc : kEinval;
	if ((r.flags & kCmdFlagFastZero) && !export_->backend->canFastZero())
		return kEnotsup;
	return 0;
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
	auto extents = export_->backend->extents(r.offset, r.length);
	if (!extents || extents->empty()) {
		appendError(r, extents ? kEio : toNbdError(extents.error()), out);
		return;
	}
	size_t count = (r.flags & kCmdFlagReqOne) ? 1 : extents->size();
	appendChunkHeader(out, kReplyFlagDone, ReplyType::BlockStatus, r.handle, static_cast<uint32_t>(4 + 8 * count));
	wire::Writer w(out);
	w.u32(kMetaIdBaseAllocation);
	for (size_t i = 0; i < count; ++i) {
		const auto &e = (*extents)[i];
		w.u32(static_cast<uint32_t>(std::min<uint64_t>(e.length, r.length)))
			.u32((e.hole ? kStateHole : 0) | (e.zero ? kStateZero : 0));
	}
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
		result = (r.flags & kCmdFlagNoHole) ? backend.ReadWriterAt::writeZeroes(r.offset, r.length)
						    : backend.writeZeroes(r.offset, r.length);
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
	if (!sendAll(fd_.get(), bytes)) {
		// The client is gone; stop reading so the session winds down.
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
	// Bound both the count and the memory of requests in flight; one request always fits.
	size_t maxBytes = std::max<size_t>(64 * 1024 * 1024, server_.options().maxPayload);
	std::unique_lock lock(flightMutex_);
	flightCond_.wait(lock, [&] {
		return inFlight_ == 0 || (inFlight_ < server_.options().maxInFlight && inFlightBytes_ + bytes <= maxBytes);
	});
	++inFlight_;
	inFlightBytes_ += bytes;
}

void Session::finishWorker(size_t bytes)
{
	std::lock_guard lock(flightMutex_);
	--inFlight_;
	inFlightBytes_ -= bytes;
	flightCond_.notify_all();
}

void Session::dispatchToWorker(const Request &r, BufferPool::Lease payload)
{
	size_t bytes = r.length;
	if (r.type != static_cast<uint16_t>(Cmd::Read) && r.type != static_cast<uint16_t>(Cmd::Write))
		bytes = 0;
	waitForWindow(bytes);
	auto job = std::make_shared<BufferPool::Lease>(std::move(payload));
	server_.workers().post([this, r, job, bytes]() mutable {
		{
			auto reply = buffers_.acquire(64);
			reply.bytes().clear();
			execute(r, job->bytes(), reply.bytes());
			sendLocked(reply.bytes());
			job.reset();
		}
		// Last touch of the session: once the count drops it may be destroyed, so every
		// buffer must be back in its pool by now.
		finishWorker(bytes);
	});
}

Result<void> Session::transmission()
{
	inline_ = export_->backend->isFast();
	logger()->debug("transmission on export '{}' ({} structured replies, {})", export_->name,
			structured_ ? "with" : "without", inline_ ? "inline" : "worker pool");
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
		if (r.type == static_cast<uint16_t>(Cmd::Disc))
			break;

		uint32_t error = validate(r);
		if (error) {
			logger()->debug("{} offset {} length {} flags {:#x}: rejected ({})", commandName(r.type), r.offset,
					r.length, r.flags, errorText(error));
			if (r.type == static_cast<uint16_t>(Cmd::Write)) {
				// Skip the payload so the stream stays in step; nothing is stored.
				got = reader_.discard(r.length);
				if (!got || !*got)
					break;
			}
			if (inline_) {
				appendError(r, error, batch_);
			} else {
				std::vector<std::byte> reply;
				appendError(r, error, reply);
				sendLocked(reply);
			}
			continue;
		}
		countRequest(r);

		bool isWrite = r.type == static_cast<uint16_t>(Cmd::Write);
		if (isWrite)
			wrote_ = true;
		if (inline_) {
			std::span<const std::byte> payload;
			BufferPool::Lease lease;
			if (isWrite) {
				if (r.length <= kReaderBuffer) {
					got = reader_.fill(r.length);
					if (!got || !*got)
						break;
					payload = std::span(reader_.data(), r.length);
				} else {
					lease = buffers_.acquire(r.length);
					lease.bytes().resize(r.length);
					got = reader_.read(lease.bytes());
					if (!got || !*got)
						break;
					payload = lease.bytes();
				}
			}
			execute(r, payload, batch_);
			if (isWrite && payload.data() == reader_.data())
				reader_.consume(r.length);
			if (batch_.size() >= kBatchLimit)
				flushBatch();
			continue;
		}

		BufferPool::Lease payload;
		if (isWrite) {
			payload = buffers_.acquire(r.length);
			payload.bytes().resize(r.length);
			got = reader_.read(payload.bytes());
			if (!got || !*got)
				break;
		}
		dispatchToWorker(r, std::move(payload));
	}

	// Finish what is in flight, then make every acknowledged write durable.
	flushBatch();
	{
		std::unique_lock lock(flightMutex_);
		flightCond_.wait(lock, [this] { return inFlight_ == 0; });
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
