#include "sync/sync_link.hpp"

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include "base/runtime.hpp"
#include "transport/service_connect.hpp"
#include "transport/tls.hpp"

namespace r3d::sync {

namespace asio = transport::asio;

ResultMsg<std::unique_ptr<SyncLink>> SyncLink::create(Runtime &runtime, SyncLinkOptions options)
{
	std::unique_ptr<SyncLink> link(new SyncLink(runtime, std::move(options)));
	if (link->options_.tls.enabled()) {
		auto tls = transport::makeClientTlsContext(link->options_.tls);
		if (!tls)
			return unexpectedOf(tls.error());
		link->tls_ = *tls;
	}
	return link;
}

SyncLink::SyncLink(Runtime &runtime, SyncLinkOptions options)
	: options_(std::move(options)), strand_(asio::make_strand(runtime.io()))
{
}

SyncLink::~SyncLink()
{
	close();
	std::promise<void> done;
	asio::post(strand_, [this, &done] {
		channel_.reset();
		done.set_value();
	});
	done.get_future().wait();
}

void SyncLink::close()
{
	connected_ = false;
	asio::post(strand_, [this] {
		if (channel_)
			channel_->abort();
	});
}

ResultMsg<void> SyncLink::connect()
{
	return asio::co_spawn(strand_, doConnect(), asio::use_future).get();
}

ResultMsg<void> SyncLink::send(std::string frames)
{
	return asio::co_spawn(strand_, doSend(std::move(frames)), asio::use_future).get();
}

ResultMsg<ReceivedFrame> SyncLink::receive(std::chrono::milliseconds timeout)
{
	return asio::co_spawn(strand_, doReceive(timeout), asio::use_future).get();
}

asio::awaitable<ResultMsg<void>> SyncLink::doConnect()
{
	if (channel_)
		channel_->abort();
	channel_.reset();
	connected_ = false;
	transport::ServiceConnectOptions connect;
	connect.host = options_.host;
	connect.port = options_.port;
	connect.service = kSyncService;
	connect.exportName = options_.name;
	connect.token = options_.token;
	connect.clientName = options_.clientName;
	connect.serverName = options_.tls.serverName;
	connect.peerRole = "the receiver";
	connect.connectTimeout = options_.connectTimeout;
	auto channel = co_await transport::connectService(strand_, connect, tls_.get());
	if (!channel)
		co_return unexpectedOf(channel.error());
	channel_ = std::move(*channel);
	connected_ = true;
	co_return ResultMsg<void>{};
}

asio::awaitable<ResultMsg<void>> SyncLink::doSend(std::string frames)
{
	if (!channel_)
		co_return fail(ENOTCONN, "not connected to the receiver");
	if (auto ec = co_await channel_->write(frames)) {
		connected_ = false;
		co_return fail(transport::toErrno(ec), "the link to the receiver failed: " + ec.message());
	}
	co_return ResultMsg<void>{};
}

asio::awaitable<ResultMsg<ReceivedFrame>> SyncLink::doReceive(std::chrono::milliseconds timeout)
{
	if (!channel_)
		co_return fail(ENOTCONN, "not connected to the receiver");
	auto *channel = channel_.get();
	transport::StepDeadline deadline(strand_, timeout, [channel] { channel->abort(); });
	transport::FrameHeader header;
	std::vector<std::byte> meta;
	std::string reason;
	auto limits = syncLimits();
	auto ec = co_await channel->readFrame(transport::FrameKind::Response, limits, header, meta, reason);
	if (!ec) {
		ReceivedFrame frame;
		auto message = decodeSyncFrame(meta, header.payloadLength);
		if (!message) {
			connected_ = false;
			co_return unexpectedOf(message.error());
		}
		frame.message = std::move(*message);
		frame.payload.resize(header.payloadLength);
		auto span = std::span<std::byte>(frame.payload);
		if (header.payloadLength)
			ec = co_await channel->readExact(span);
		if (!ec)
			co_return frame;
	}
	connected_ = false;
	if (!reason.empty())
		co_return fail(EPROTO, "the receiver broke the framing: " + reason);
	if (deadline.expired())
		co_return fail(ETIMEDOUT, fmt::format("no answer from the receiver within {} ms", timeout.count()));
	co_return fail(transport::toErrno(ec), "the link to the receiver failed: " + ec.message());
}

} // namespace r3d::sync
