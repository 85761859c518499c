// Session, part 2: the fixed newstyle handshake (option haggling). Construction and
// lifecycle are in session.cpp, the transmission phase in transmission.cpp.

#include "nbd/session.hpp"

#include <algorithm>
#include <array>

#include <r3d/log.hpp>

#include "nbd/meta_source.hpp"
#include "nbd/wire.hpp"

namespace r3d::nbd {

namespace {

using wire::get16;
using wire::get32;
using wire::get64;
using wire::put16;
using wire::put64;

// Options carry at most a few strings of ≤ 4 KiB; anything larger is not a real client.
constexpr uint32_t kMaxOptionData = 64 * 1024;

// A MetaSource's contexts past this many are not offered: ids and replies stay small.
constexpr size_t kMaxMetaContexts = 64;

std::shared_ptr<spdlog::logger> logger()
{
	static auto l = log::get("nbd");
	return l;
}

struct MetaContext {
	uint32_t id;
	std::string name;
};

// What an export offers, in id order: base:allocation, then its MetaSource's contexts.
std::vector<MetaContext> offeredContexts(const Export &exp)
{
	std::vector<MetaContext> all{ { kMetaIdBaseAllocation, kMetaBaseAllocation } };
	if (!exp.meta)
		return all;
	auto names = exp.meta->contexts();
	for (size_t i = 0; i < names.size() && i < kMaxMetaContexts; ++i) {
		// A name the protocol cannot carry (no "namespace:", too long) or one offered
		// twice is the source's bug; leaving it out keeps the client's view consistent.
		auto &name = names[i];
		size_t colon = name.find(':');
		bool twice = std::any_of(all.begin(), all.end(), [&](const MetaContext &c) { return c.name == name; });
		if (colon == 0 || colon == std::string::npos || name.size() > kMaxStringLength || twice) {
			logger()->debug("export '{}': not offering meta context '{}'", exp.name, name);
			continue;
		}
		all.push_back({ kMetaIdFirstSource + static_cast<uint32_t>(i), std::move(name) });
	}
	return all;
}

// A query names a context exactly; for LIST, a namespace with an empty leaf ("base:",
// "x-r3map:") also names all of that namespace. Anything else matches nothing, as the
// protocol wants unknown queries ignored.
bool queryMatches(const std::string &query, const std::string &name, bool list)
{
	if (query == name)
		return true;
	return list && !query.empty() && query.find(':') == query.size() - 1 && name.starts_with(query);
}

const char *optionName(uint32_t opt)
{
	static constexpr const char *kNames[] = { "?", "EXPORT_NAME", "ABORT", "LIST", "PEEK_EXPORT", "STARTTLS", "INFO",
						  "GO", "STRUCTURED_REPLY", "LIST_META_CONTEXT", "SET_META_CONTEXT",
						  "EXTENDED_HEADERS" };
	return opt < std::size(kNames) ? kNames[opt] : "unknown";
}

} // namespace

Result<void> Session::sendOptReply(uint32_t opt, Rep type, std::span<const std::byte> data)
{
	std::vector<std::byte> msg;
	msg.reserve(20 + data.size());
	wire::Writer(msg).u64(kOptReplyMagic).u32(opt).u32(static_cast<uint32_t>(type)).u32(
		static_cast<uint32_t>(data.size()));
	msg.insert(msg.end(), data.begin(), data.end());
	return send(msg);
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
	R3D_TRY(send(hello));

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
	if (!(clientFlags & kClientFlagFixedNewstyle) && server_.options().tls == TlsPolicy::Require) {
		// TLS needs fixed newstyle; without it the protocol leaves us only NOTLS.
		logger()->warn("{}: refused: this server requires TLS and the client does not speak fixed newstyle", peer_);
		return false;
	}

	for (bool first = true;; first = false) {
		got = reader_.fill(16);
		if (!got)
			return unexpected(got.error());
		if (!*got && tls_ && optionsInTls_ == 0)
			// Clients such as qemu check the certificate only once the handshake is done.
			logger()->warn("{}: left right after the TLS handshake: it may not accept this server's "
				       "certificate (its CA, names or dates)",
				       peer_);
		if (!*got) {
			if (first)
				logger()->debug("{}: left before sending an option", peer_);
			return false;
		}
		if (tls_)
			++optionsInTls_;
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
	if (server_.stopping() && opt == static_cast<uint32_t>(Opt::ExportName))
		return Step::Close; // EXPORT_NAME has no error reply
	if (server_.stopping() && opt != static_cast<uint32_t>(Opt::Abort)) {
		R3D_TRY(sendOptError(opt, Rep::ErrShutdown, "server is shutting down"));
		return Step::Continue;
	}
	if (server_.options().tls == TlsPolicy::Require && !tls_ && opt != static_cast<uint32_t>(Opt::StartTls) &&
	    opt != static_cast<uint32_t>(Opt::Abort))
		return refuseWithoutTls(opt);
	switch (static_cast<Opt>(opt)) {
	case Opt::StartTls:
		return startTls(opt, data);
	case Opt::ExportName: {
		std::string name(reinterpret_cast<const char *>(data.data()), data.size());
		const Export *exp = server_.findExport(name);
		if (!exp) {
			// EXPORT_NAME cannot return an error: the protocol says to close.
			logger()->info("client asked for unknown export '{}'; closing", name);
			return Step::Close;
		}
		enterExport(*exp);
		std::vector<std::byte> reply;
		wire::Writer(reply).u64(exp->backend->size()).u16(server_.transmissionFlags(*exp, structured_));
		if (!noZeroes_)
			reply.resize(reply.size() + 124);
		R3D_TRY(send(reply));
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

Result<Session::Step> Session::refuseWithoutTls(uint32_t opt)
{
	if (!refusedInClear_)
		logger()->warn("{}: refused: this server requires TLS and the client sent NBD_OPT_{} without "
			       "NBD_OPT_STARTTLS",
			       peer_, optionName(opt));
	refusedInClear_ = true;
	if (opt == static_cast<uint32_t>(Opt::ExportName))
		return Step::Close; // EXPORT_NAME has no error reply
	R3D_TRY(sendOptError(opt, Rep::ErrTlsReqd, "this server requires TLS: send NBD_OPT_STARTTLS first"));
	return Step::Continue;
}

Result<Session::Step> Session::startTls(uint32_t opt, const std::vector<std::byte> &data)
{
	const auto &options = server_.options();
	if (options.tls == TlsPolicy::Off || !options.tlsContext) {
		logger()->info("{}: refused NBD_OPT_STARTTLS: TLS is off on this server", peer_);
		R3D_TRY(sendOptError(opt, Rep::ErrPolicy, "TLS is off on this server"));
		return Step::Continue;
	}
	if (tls_) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "TLS is on already"));
		return Step::Continue;
	}
	if (!data.empty()) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "NBD_OPT_STARTTLS takes no data"));
		return Step::Continue;
	}
	if (reader_.available() != 0) {
		// Bytes sent before our ACK are not TLS and cannot be handed to it.
		logger()->warn("{}: sent more after NBD_OPT_STARTTLS without waiting for the reply; closing", peer_);
		return Step::Close;
	}
	R3D_TRY(sendOptReply(opt, Rep::Ack));
	auto relay = TlsRelay::accept(fd_.get(), options.tlsContext, options.handshakeTimeout);
	if (!relay) {
		logger()->warn("{}: refused: TLS handshake failed: {}", peer_, relay.error().message);
		return Step::Close;
	}
	tls_ = std::move(*relay);
	plain_ = tls_->takePlain();
	io_ = plain_.get();
	reader_.setFd(io_);
	logger()->debug("{}: {} is on", peer_, tls_->version());
	// Nothing negotiated in clear carries over into TLS (the protocol says so).
	structured_ = false;
	metaBaseAllocation_ = false;
	metaContexts_.clear();
	metaExport_.clear();
	export_ = nullptr;
	return Step::Continue;
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
	enterExport(*exp);
	return Step::Transmit;
}

void Session::enterExport(const Export &exp)
{
	export_ = &exp;
	if (metaExport_ != exp.name && server_.findExport(metaExport_) != &exp) {
		// Chosen for another export, whose MetaSource the indices belong to.
		metaBaseAllocation_ = false;
		metaContexts_.clear();
	}
}

Result<Session::Step> Session::handleMetaContext(uint32_t opt, const std::vector<std::byte> &data)
{
	bool set = static_cast<Opt>(opt) == Opt::SetMetaContext;
	logger()->debug("meta context option {} ({} bytes)", opt, data.size());
	if (set) {
		// A SET replaces the selection even when it fails (the protocol says so).
		metaBaseAllocation_ = false;
		metaContexts_.clear();
	}
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
	// Each query takes at least its 4 length bytes, so a count that cannot fit is refused
	// before anything is allocated for it.
	bool ok = takeString(name) && take32(count) && count <= (data.size() - pos) / 4;
	if (ok)
		queries.reserve(count);
	for (uint32_t i = 0; ok && i < count; ++i) {
		std::string q;
		ok = takeString(q);
		queries.push_back(std::move(q));
	}
	if (!ok || pos != data.size()) {
		R3D_TRY(sendOptError(opt, Rep::ErrInvalid, "malformed meta context option"));
		return Step::Continue;
	}
	const Export *exp = server_.findExport(name);
	if (!exp) {
		R3D_TRY(sendOptError(opt, Rep::ErrUnknown, "no export named '" + name + "'"));
		return Step::Continue;
	}
	// LIST without queries lists everything; SET without queries selects nothing.
	bool base = false;
	std::vector<size_t> chosen;
	for (const auto &context : offeredContexts(*exp)) {
		bool hit = !set && queries.empty();
		for (size_t i = 0; !hit && i < queries.size(); ++i)
			hit = queryMatches(queries[i], context.name, !set);
		if (!hit)
			continue;
		if (context.id == kMetaIdBaseAllocation)
			base = true;
		else
			chosen.push_back(context.id - kMetaIdFirstSource);
		std::vector<std::byte> payload;
		wire::Writer(payload).u32(set ? context.id : 0).str(context.name); // LIST ids are reserved: 0
		R3D_TRY(sendOptReply(opt, Rep::MetaContext, payload));
	}
	if (set) {
		metaBaseAllocation_ = base;
		metaContexts_ = std::move(chosen);
		metaExport_ = name;
	}
	R3D_TRY(sendOptReply(opt, Rep::Ack));
	return Step::Continue;
}

} // namespace r3d::nbd
