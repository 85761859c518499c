#include "sync/sync_session.hpp"

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "sync/chunk_codec.hpp"
#include "transport/block/messages.hpp"

namespace r3d::sync {

namespace {

namespace asio = transport::asio;

auto logger()
{
	return r3d::log::get("sync");
}

} // namespace

SyncSession::SyncSession(std::shared_ptr<SyncService> service, std::string peer)
	: service_(std::move(service)), peer_(std::move(peer))
{
}

SyncSession::~SyncSession()
{
	if (copy_)
		service_->release(copy_);
}

void SyncSession::close()
{
	closed_ = true;
	if (channel_)
		channel_->close();
}

bool SyncSession::refuse(const std::string &why)
{
	logger()->warn("{}: closing the sync connection{}: {}", peer_, name_.empty() ? "" : " for '" + name_ + "'",
		       why);
	return false;
}

asio::awaitable<bool> SyncSession::send(std::string frames)
{
	auto ec = co_await channel_->write(frames);
	co_return !ec && !closed_;
}

asio::awaitable<void> SyncSession::run(transport::Channel &channel, transport::Strand)
{
	channel_ = &channel;
	peer_ = channel.peer() + " (" + peer_ + ")";
	transport::HelloReply reply;
	reply.maxInFlight = 1;
	reply.maxPayload = static_cast<uint32_t>(kMaxSyncChunk);
	reply.server = "r3map";
	std::string frame;
	transport::appendFrame(frame, reply);
	if (co_await channel.write(frame)) {
		channel_ = nullptr;
		co_return;
	}
	std::vector<std::byte> meta;
	std::vector<std::byte> payload;
	while (!closed_) {
		transport::FrameHeader header;
		std::string reason;
		auto limits = syncLimits();
		auto ec = co_await channel.readFrame(transport::FrameKind::Request, limits, header, meta, reason);
		if (ec) {
			if (!reason.empty())
				refuse(reason);
			break;
		}
		auto message = decodeSyncFrame(meta, header.payloadLength);
		if (!message) {
			refuse(message.error().message);
			break;
		}
		payload.resize(header.payloadLength);
		if (header.payloadLength) {
			auto span = std::span<std::byte>(payload);
			if (co_await channel.readExact(span))
				break;
		}
		bool going = co_await handle(*message, payload);
		if (!going)
			break;
	}
	if (receiver_ && inGeneration_)
		receiver_->abort();
	channel_ = nullptr;
}

asio::awaitable<bool> SyncSession::hello(const SyncMessage &message)
{
	auto h = decodeSyncHello(message.bytes());
	SyncHelloReply reply;
	if (!h) {
		reply.error = h.error().code.value() ? h.error().code.value() : EPROTO;
		reply.message = h.error().message;
	} else {
		name_ = h->name;
		chunk_ = h->chunkSize;
		auto copy = service_->claim(name_);
		if (!copy) {
			reply.error = copy.error().code.value();
			reply.message = copy.error().message;
		} else {
			copy_ = *copy;
			auto &receiver = copy_->receiver;
			if (!receiver || receiver->chunk() != chunk_) {
				receiver.reset();
				ReceiverOpenReport report;
				const auto &so = service_->options();
				auto opened = so.target ? SyncReceiver::openTarget(so.target, name_, chunk_, so.receiver,
										   service_->pool(), &report)
							: SyncReceiver::open(so.dir, name_, chunk_, so.receiver,
									     service_->pool(), &report);
				if (!opened) {
					reply.error = opened.error().code.value();
					reply.message = opened.error().message;
				} else {
					receiver = std::move(*opened);
					if (report.replayedJournal)
						logger()->info("'{}': replayed a committed journal (generation {})", name_,
							       receiver->generation());
				}
			}
			receiver_ = receiver.get();
		}
	}
	std::string frames;
	if (reply.error) {
		appendSyncFrame(frames, SyncType::HelloReply, encode(reply), 0, false);
		bool sent = co_await send(std::move(frames));
		(void)sent;
		co_return refuse(reply.message);
	}
	reply.generation = receiver_->generation();
	reply.size = receiver_->size();
	encodings_ = h->encodings & kEncodingsKnown;
	reply.encodings = encodings_;
	const auto &hashes = receiver_->hashes();
	reply.hashCount = hashes.size();
	appendSyncFrame(frames, SyncType::HelloReply, encode(reply), 0, false);
	uint64_t first = 0;
	do {
		uint64_t n = std::min<uint64_t>(kHashesPerFrame, hashes.size() - first);
		SyncHashes m{ first, first + n == hashes.size(), {} };
		std::string payload = hashPayload(hashes, first, n);
		appendSyncFrame(frames, SyncType::Hashes, encode(m), static_cast<uint32_t>(payload.size()), false);
		frames += payload;
		first += n;
	} while (first < hashes.size());
	co_return co_await send(std::move(frames));
}

void SyncSession::finishGeneration(int error, const std::string &message)
{
	auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
	AppliedGeneration applied;
	applied.name = name_;
	applied.peer = peer_;
	applied.generation = generation_;
	applied.size = newSize_;
	applied.chunks = expected_.size();
	applied.bytes = bytes_;
	applied.seconds = elapsed;
	applied.error = error;
	applied.message = message;
	if (!error)
		applied.changed = receiver_->lastChanged();
	inGeneration_ = false;
	listDone_ = false;
	expected_.clear();
	nextChunk_ = 0;
	bytes_ = 0;
	error_ = 0;
	errorMessage_.clear();
	if (service_->options().onApplied)
		service_->options().onApplied(applied, *receiver_);
}

asio::awaitable<bool> SyncSession::handle(const SyncMessage &message, std::vector<std::byte> &payload)
{
	if (message.type == SyncType::Hello) {
		if (receiver_)
			co_return refuse("a second sync hello");
		co_return co_await hello(message);
	}
	if (!receiver_)
		co_return refuse(fmt::format("a {} before the sync hello", syncTypeName(message.type)));
	switch (message.type) {
	case SyncType::Begin: {
		auto b = decodeSyncBegin(message.bytes(), chunk_);
		if (!b)
			co_return refuse(b.error().message);
		if (!inGeneration_) {
			if (b->generation != receiver_->generation() + 1)
				co_return refuse(fmt::format("generation {} after {}", b->generation,
							     receiver_->generation()));
			inGeneration_ = true;
			listDone_ = false;
			generation_ = b->generation;
			newSize_ = b->size;
			lastWindowEnd_ = 0;
			started_ = std::chrono::steady_clock::now();
			if (auto ok = receiver_->begin(generation_, newSize_); !ok) {
				error_ = ok.error().code.value();
				errorMessage_ = ok.error().message;
			}
		} else if (listDone_ || b->generation != generation_ || b->size != newSize_) {
			co_return refuse("a generation begin out of turn");
		}
		if (b->chunks.end != 0 && b->chunks.first < lastWindowEnd_)
			co_return refuse("generation begin windows out of order");
		lastWindowEnd_ = b->chunks.end;
		expected_.insert(expected_.end(), b->chunks.chunks.begin(), b->chunks.chunks.end());
		listDone_ = b->last;
		co_return true;
	}
	case SyncType::Chunk: {
		if (!inGeneration_ || !listDone_)
			co_return refuse("a chunk outside a generation");
		SyncShape shape{ newSize_, chunk_ };
		auto c = decodeSyncChunk(message.bytes(), message.payloadLength, shape, encodings_);
		if (!c)
			co_return refuse(c.error().message);
		if (c->generation != generation_ || nextChunk_ >= expected_.size() || expected_[nextChunk_] != c->index)
			co_return refuse(fmt::format("chunk {} of generation {} was not next in the list", c->index,
						     c->generation));
		++nextChunk_;
		bytes_ += payload.size();
		if (error_)
			co_return true;
		std::span<const std::byte> bytes = payload;
		if (c->encoding == kEncodingZstd) {
			decoded_.resize(static_cast<size_t>(shape.lengthOf(c->index)));
			if (auto ok = decompressChunk(payload, decoded_); !ok)
				co_return refuse(fmt::format("chunk {}: {}", c->index, ok.error().message));
			bytes = decoded_;
		}
		if (auto ok = receiver_->addChunk(c->index, bytes); !ok) {
			error_ = ok.error().code.value();
			errorMessage_ = ok.error().message;
		}
		co_return true;
	}
	case SyncType::Commit: {
		auto c = decodeSyncCommit(message.bytes());
		if (!c)
			co_return refuse(c.error().message);
		if (!inGeneration_ || !listDone_ || c->generation != generation_)
			co_return refuse("a commit out of turn");
		if (nextChunk_ != expected_.size())
			co_return refuse(fmt::format("commit after {} of the {} listed chunks", nextChunk_,
						     expected_.size()));
		if (!error_)
			if (auto ok = receiver_->commit(generation_); !ok) {
				error_ = ok.error().code.value();
				errorMessage_ = ok.error().message;
			}
		SyncAck ack{ generation_, error_, errorMessage_ };
		if (error_) {
			receiver_->abort();
			logger()->error("'{}': generation {} failed: {}", name_, generation_, errorMessage_);
		}
		finishGeneration(ack.error, ack.message);
		std::string frames;
		appendSyncFrame(frames, SyncType::Ack, encode(ack), 0, false);
		co_return co_await send(std::move(frames));
	}
	default:
		co_return refuse(fmt::format("a {} from the sender", syncTypeName(message.type)));
	}
}

} // namespace r3d::sync
