#include "migration/seeder_session.hpp"

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "base/runtime.hpp"

namespace r3d::migration {
namespace {

namespace asio = transport::asio;

auto logger()
{
	return r3d::log::get("migration");
}

} // namespace

SeederSession::SeederSession(std::shared_ptr<SeederCore> core, Runtime &runtime, std::string peer)
	: core_(std::move(core)), runtime_(runtime), peer_(std::move(peer))
{
}

void SeederSession::close()
{
	closed_ = true;
}

void SeederSession::kill()
{
	closed_ = true;
	if (channel_)
		channel_->abort();
}

bool SeederSession::refuse(const std::string &why)
{
	logger()->warn("{}: closing the migration connection{}: {}", peer_,
		       leecherId_.empty() ? "" : fmt::format(" of leecher '{}'", leecherId_), why);
	return false;
}

asio::awaitable<bool> SeederSession::send(MessageType type, const std::string &body)
{
	std::string frame;
	appendWire(frame, type, body, false);
	auto ec = co_await channel_->write(frame);
	co_return !ec && !closed_;
}

asio::awaitable<bool> SeederSession::sendList(uint64_t round, uint64_t epoch, const std::vector<uint64_t> &chunks)
{
	auto windows = splitWindows(chunks, core_->region().chunks());
	std::string frames;
	for (size_t i = 0; i < windows.size(); ++i)
		appendWire(frames, MessageType::DirtyList,
			   encode(DirtyList{ round, epoch, std::move(windows[i]), i + 1 == windows.size() }), false);
	auto ec = co_await channel_->write(frames);
	co_return !ec && !closed_;
}

asio::awaitable<ResultMsg<DirtyRound>> SeederSession::offload(const std::function<ResultMsg<DirtyRound>()> &fn)
{
	auto result = std::make_shared<std::optional<ResultMsg<DirtyRound>>>();
	transport::Wakeup wake(*strand_);
	auto strand = *strand_;
	// The coroutine waits for the result whatever happens to the connection, so `wake`
	// outlives the job's post.
	runtime_.blocking().post([fn, result, strand, wake = &wake, self = shared_from_this()] {
		auto r = fn();
		asio::post(strand, [r = std::move(r), result, wake]() mutable {
			*result = std::move(r);
			wake->notify();
		});
	});
	while (!*result)
		co_await wake.wait();
	co_return std::move(**result);
}

asio::awaitable<void> SeederSession::run(transport::Channel &channel, transport::Strand strand)
{
	channel_ = &channel;
	strand_ = strand;
	peer_ = channel.peer() + " (" + peer_ + ")";
	auto region = core_->region();
	// The transport hello's answer: the region, served read-only over this service.
	transport::HelloReply reply;
	reply.size = region.size;
	reply.chunkSize = region.chunk;
	reply.maxInFlight = 1;
	reply.readOnly = true;
	reply.server = "r3map";
	std::string frame;
	transport::appendFrame(frame, reply);
	if (co_await channel.write(frame)) {
		channel_ = nullptr;
		co_return;
	}
	std::vector<std::byte> meta;
	while (!closed_) {
		transport::FrameHeader header;
		std::string reason;
		auto ec = co_await channel.readFrame(transport::FrameKind::Request, wireLimits(), header, meta, reason);
		if (ec) {
			if (!reason.empty())
				refuse(reason);
			break;
		}
		auto message = decodeWire(meta);
		if (!message) {
			refuse(message.error().message);
			break;
		}
		bool going = co_await handle(*message);
		if (!going)
			break;
	}
	if (!leecherId_.empty())
		core_->left(leecherId_, this);
	channel_ = nullptr;
}

asio::awaitable<bool> SeederSession::handle(const WireMessage &message)
{
	auto region = core_->region();
	if (leecherId_.empty() && message.type != MessageType::Hello)
		co_return refuse(fmt::format("a {} before the migration hello", messageTypeName(message.type)));
	switch (message.type) {
	case MessageType::Hello: {
		if (!leecherId_.empty())
			co_return refuse("a second migration hello");
		auto hello = decodeMigrationHello(message.bytes());
		MigrationHelloReply reply;
		reply.migrationId = core_->migrationId();
		if (!hello) {
			reply.error = hello.error().code.value();
			reply.message = hello.error().message;
		} else {
			reply = core_->admit(*hello, this);
		}
		if (reply.error) {
			logger()->warn("{}: migration hello refused: {}", peer_, reply.message);
			std::string body = encode(reply);
			co_await send(MessageType::HelloReply, body);
			co_return false;
		}
		leecherId_ = hello->leecherId;
		std::string body = encode(reply);
		bool sent = co_await send(MessageType::HelloReply, body);
		co_return sent;
	}
	case MessageType::RoundRequest: {
		auto request = decodeRoundRequest(message.bytes());
		if (!request)
			co_return refuse(request.error().message);
		auto round = core_->nextRound(leecherId_, request->appliedRound);
		if (!round)
			co_return refuse(round.error().message);
		uint64_t epoch = core_->epoch();
		bool sent = co_await sendList(round->round, epoch, round->chunks);
		co_return sent;
	}
	case MessageType::Resume: {
		auto part = decodeResume(message.bytes(), region);
		if (!part)
			co_return refuse(part.error().message);
		if (!resume_)
			resume_.emplace(region.chunks());
		if (auto ok = resume_->add(part->held, part->last, part->round, part->epoch); !ok)
			co_return refuse(ok.error().message);
		if (!resume_->complete())
			co_return true;
		(void)resume_->take(); // the held set: accounting only, the seeder does not push
		resume_.reset();
		if (auto ok = core_->resume(leecherId_, part->round); !ok)
			co_return refuse(ok.error().message);
		co_return true;
	}
	case MessageType::FinalizeRequest: {
		auto request = decodeFinalizeRequest(message.bytes());
		if (!request)
			co_return refuse(request.error().message);
		if (request->leecherId != leecherId_)
			co_return refuse("a finalize request for another leecher");
		bool going = co_await finalize(*request);
		co_return going;
	}
	case MessageType::FinalizeCommit: {
		auto commit = decodeFinalizeCommit(message.bytes());
		if (!commit)
			co_return refuse(commit.error().message);
		if (commit->leecherId != leecherId_)
			co_return refuse("a commit for another leecher");
		auto ok = core_->commit(*commit);
		FinalizeCommitAck ack;
		ack.epoch = commit->epoch;
		if (!ok) {
			ack.error = ok.error().code.value();
			ack.message = ok.error().message;
		}
		std::string body = encode(ack);
		bool sent = co_await send(MessageType::FinalizeCommitAck, body);
		co_return sent;
	}
	case MessageType::Complete:
		core_->complete(leecherId_);
		co_return true;
	default:
		co_return refuse(fmt::format("a {} is not for the seeder", messageTypeName(message.type)));
	}
}

asio::awaitable<bool> SeederSession::finalize(const FinalizeRequest &request)
{
	auto proposed = core_->beginFinalize(request);
	if (!proposed) {
		FinalizeAck ack;
		ack.error = proposed.error().code.value();
		ack.message = proposed.error().message;
		ack.epoch = request.epoch;
		std::string body = encode(ack);
		bool sent = co_await send(MessageType::FinalizeAck, body);
		co_return sent;
	}
	uint64_t epoch = *proposed;
	std::string leecher = leecherId_;
	auto core = core_;
	std::function<ResultMsg<DirtyRound>()> job = [core, leecher, epoch] { return core->lockForHandover(leecher, epoch); };
	auto locked = co_await offload(job);
	if (!locked) {
		core_->abortHandover(leecherId_, locked.error().message);
		FinalizeAck ack;
		ack.error = locked.error().code.value();
		ack.message = locked.error().message;
		ack.epoch = request.epoch;
		if (closed_)
			co_return false;
		std::string body = encode(ack);
		bool sent = co_await send(MessageType::FinalizeAck, body);
		co_return sent;
	}
	if (closed_)
		co_return false; // left() aborts the handover
	FinalizeAck ack;
	ack.epoch = epoch;
	ack.round = locked->round;
	ack.lockedNs = static_cast<uint64_t>(core_->lockedFor().count());
	std::string body = encode(ack);
	bool sent = co_await send(MessageType::FinalizeAck, body);
	if (!sent)
		co_return false;
	sent = co_await sendList(locked->round, epoch, locked->chunks);
	co_return sent;
}

} // namespace r3d::migration
