#include "sync/sync_sender.hpp"

#include <optional>

#include <fmt/format.h>

#include "sync/chunk_codec.hpp"
#include "sync/sync_messages.hpp"

namespace r3d::sync {

const char *syncErrorKindName(SyncErrorKind kind)
{
	switch (kind) {
	case SyncErrorKind::Transient:
		return "transient";
	case SyncErrorKind::Auth:
		return "auth";
	case SyncErrorKind::Tls:
		return "tls";
	case SyncErrorKind::Version:
		return "version";
	case SyncErrorKind::Refused:
		return "refused";
	}
	return "transient";
}

SyncErrorKind connectErrorKind(int error)
{
	switch (error) {
	case EACCES: // the server's token check (transport/block/rpc_session.cpp)
	case EPERM:
		return SyncErrorKind::Auth;
	case EPROTO: // the TLS handshake failed, or the hello reply was not ours
		return SyncErrorKind::Tls;
	case EPROTONOSUPPORT: // the transport's version, or no such service
		return SyncErrorKind::Version;
	default: // refused, reset, timed out, unreachable, cannot resolve: the network's
		return SyncErrorKind::Transient;
	}
}

ResultMsg<std::unique_ptr<SyncSender>> SyncSender::create(Runtime &runtime, SyncSenderOptions options)
{
	if (options.chunk < limits::kMinChunk || options.chunk > kMaxSyncChunk)
		return fail(EINVAL, fmt::format("chunk size {} is outside [{}, {}]", options.chunk, limits::kMinChunk,
						kMaxSyncChunk));
	auto link = SyncLink::create(runtime, options.link);
	if (!link)
		return unexpectedOf(link.error());
	return std::unique_ptr<SyncSender>(new SyncSender(std::move(options), std::move(*link)));
}

SyncSender::SyncSender(SyncSenderOptions options, std::unique_ptr<SyncLink> link)
	: options_(std::move(options)), link_(std::move(link))
{
}

ResultMsg<void> SyncSender::refused(SyncErrorKind kind, Error error)
{
	failure_ = kind;
	return unexpectedOf(error);
}

ResultMsg<void> SyncSender::handshake(uint64_t size, uint64_t &wire)
{
	known_ = false;
	if (auto ok = link_->connect(); !ok)
		return refused(connectErrorKind(ok.error().code.value()), ok.error());
	SyncHello hello{ kSyncVersion, options_.link.name, size, options_.chunk, kHashXxh3_128,
			 options_.link.compress ? kEncodingsKnown : 0u };
	std::string frames;
	appendSyncFrame(frames, SyncType::Hello, encode(hello), 0, true);
	wire += frames.size();
	if (auto ok = link_->send(std::move(frames)); !ok)
		return ok;
	auto frame = link_->receive(options_.link.connectTimeout + std::chrono::minutes(10)); // the receiver may rehash
	if (!frame)
		return unexpectedOf(frame.error());
	wire += transport::kFrameHeaderSize + frame->message.body.size();
	if (frame->message.type != SyncType::HelloReply)
		return refused(SyncErrorKind::Refused,
			       Error{ errnoCode(EPROTO), fmt::format("the receiver answered the hello with a {}",
								      syncTypeName(frame->message.type)) });
	auto reply = decodeSyncHelloReply(frame->message.bytes(), options_.chunk);
	if (!reply)
		return refused(SyncErrorKind::Refused, reply.error());
	if (reply->error) {
		link_->close();
		Error e{ errnoCode(reply->error), "the receiver refused: " + reply->message };
		// The version, the hash kind or the name: every hello would be refused alike. The
		// rest (EBUSY: another sender; EIO, ENOSPC opening the copy) may pass.
		if (reply->error == EPROTONOSUPPORT)
			return refused(SyncErrorKind::Version, e);
		if (reply->error == EPROTO || reply->error == EINVAL)
			return refused(SyncErrorKind::Refused, e);
		return unexpectedOf(e);
	}
	std::vector<ChunkHash> hashes;
	hashes.reserve(static_cast<size_t>(reply->hashCount));
	SyncShape shape{ reply->size, options_.chunk };
	for (;;) {
		auto h = link_->receive(options_.ackTimeout);
		if (!h)
			return unexpectedOf(h.error());
		wire += transport::kFrameHeaderSize + h->message.body.size() + h->payload.size();
		if (h->message.type != SyncType::Hashes)
			return fail(EPROTO, fmt::format("a {} among the receiver's hashes", syncTypeName(h->message.type)));
		auto m = decodeSyncHashes(h->message.bytes(), h->payload, shape);
		if (!m)
			return unexpectedOf(m.error());
		if (m->first != hashes.size())
			return fail(EPROTO, fmt::format("hashes from chunk {} after {}", m->first, hashes.size()));
		hashes.insert(hashes.end(), m->hashes.begin(), m->hashes.end());
		if (m->last)
			break;
	}
	if (hashes.size() != reply->hashCount)
		return fail(EPROTO, fmt::format("{} hashes for the {} announced", hashes.size(), reply->hashCount));
	generation_ = reply->generation;
	copySize_ = reply->size;
	zstd_ = (reply->encodings & (1u << kEncodingZstd)) != 0;
	copyHashes_ = std::move(hashes);
	known_ = true;
	return {};
}

std::vector<uint64_t> SyncSender::changedChunks(const SyncSourceView &source) const
{
	std::vector<uint64_t> changed;
	const auto &hashes = *source.hashes;
	for (uint64_t i = 0; i < hashes.size(); ++i)
		if (i >= copyHashes_.size() || !(hashes[i] == copyHashes_[i]))
			changed.push_back(i);
	return changed;
}

ResultMsg<PushReport> SyncSender::push(const SyncSourceView &source)
{
	PushReport report;
	failure_ = SyncErrorKind::Transient;
	if (!known_ || !link_->connected()) {
		report.reconnected = true;
		if (auto ok = handshake(source.size, report.wireBytes); !ok) {
			link_->close();
			known_ = false;
			return unexpectedOf(ok.error());
		}
	}
	auto failed = [this](const Error &e) -> ResultMsg<PushReport> {
		link_->close();
		known_ = false;
		return unexpectedOf(e);
	};
	auto changed = changedChunks(source);
	if (changed.empty() && source.size == copySize_) {
		report.generation = generation_;
		return report;
	}
	const uint64_t generation = generation_ + 1;
	SyncShape shape{ source.size, options_.chunk };
	std::string frames;
	auto windows = transport::splitWindows(changed, shape.chunks());
	for (size_t i = 0; i < windows.size(); ++i) {
		SyncBegin b{ generation, source.size, std::move(windows[i]), i + 1 == windows.size() };
		appendSyncFrame(frames, SyncType::Begin, encode(b), 0, true);
	}
	std::vector<ChunkHash> sentHashes(changed.size());
	std::string data;
	for (size_t i = 0; i < changed.size(); ++i) {
		uint64_t index = changed[i];
		uint64_t length = shape.lengthOf(index);
		data.resize(static_cast<size_t>(length));
		auto buf = std::as_writable_bytes(std::span(data.data(), data.size()));
		if (auto ok = source.read(buf, index * options_.chunk); !ok)
			return failed(ok.error());
		sentHashes[i] = hashBytes(buf);
		std::optional<std::string> packed;
		if (zstd_)
			packed = compressChunk(buf);
		const std::string &payload = packed ? *packed : data;
		appendSyncFrame(frames, SyncType::Chunk,
				encode(SyncChunk{ generation, index, packed ? kEncodingZstd : kEncodingRaw }),
				static_cast<uint32_t>(payload.size()), true);
		frames += payload;
		report.bytesSent += payload.size();
		if (frames.size() >= options_.batchBytes) {
			report.wireBytes += frames.size();
			if (auto ok = link_->send(std::move(frames)); !ok)
				return failed(ok.error());
			frames.clear();
		}
	}
	appendSyncFrame(frames, SyncType::Commit, encode(SyncCommit{ generation }), 0, true);
	report.wireBytes += frames.size();
	if (auto ok = link_->send(std::move(frames)); !ok)
		return failed(ok.error());
	auto frame = link_->receive(options_.ackTimeout);
	if (!frame)
		return failed(frame.error());
	report.wireBytes += transport::kFrameHeaderSize + frame->message.body.size();
	if (frame->message.type != SyncType::Ack)
		return failed(Error{ errnoCode(EPROTO), fmt::format("the receiver answered the commit with a {}",
									  syncTypeName(frame->message.type)) });
	auto ack = decodeSyncAck(frame->message.bytes());
	if (!ack)
		return failed(ack.error());
	if (ack->error)
		return failed(Error{ errnoCode(ack->error),
				     fmt::format("the receiver failed generation {}: {}", generation, ack->message) });
	if (ack->generation != generation)
		return failed(Error{ errnoCode(EPROTO), fmt::format("ack of generation {} for {}", ack->generation,
									  generation) });
	generation_ = generation;
	copySize_ = source.size;
	copyHashes_.resize(static_cast<size_t>(shape.chunks()));
	for (size_t i = 0; i < changed.size(); ++i)
		copyHashes_[changed[i]] = sentHashes[i];
	report.generation = generation;
	report.chunksChanged = changed.size();
	return report;
}

} // namespace r3d::sync
