#include "migration/control_link.hpp"

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include "base/runtime.hpp"
#include "transport/service_connect.hpp"
#include "transport/tls.hpp"

namespace r3d::migration {
namespace {

namespace asio = transport::asio;
using transport::ErrorCode;
using transport::tcp;

} // namespace

ResultMsg<std::unique_ptr<ControlLink>> ControlLink::create(Runtime &runtime, ControlLinkOptions options)
{
	std::unique_ptr<ControlLink> link(new ControlLink(runtime, std::move(options)));
	if (link->options_.tls.enabled()) {
		auto tls = transport::makeClientTlsContext(link->options_.tls);
		if (!tls)
			return unexpectedOf(tls.error());
		link->tls_ = *tls;
	}
	return link;
}

ControlLink::ControlLink(Runtime &runtime, ControlLinkOptions options)
	: runtime_(runtime), options_(std::move(options)), strand_(asio::make_strand(runtime.io()))
{
}

ControlLink::~ControlLink()
{
	close();
	// Wait until the close ran: nothing of this link may be left on the strand.
	std::promise<void> done;
	asio::post(strand_, [this, &done] {
		channel_.reset();
		done.set_value();
	});
	done.get_future().wait();
}

bool ControlLink::connected() const
{
	return connected_;
}

void ControlLink::close()
{
	connected_ = false;
	asio::post(strand_, [this] {
		if (channel_)
			channel_->abort();
	});
}

ResultMsg<void> ControlLink::connect()
{
	return asio::co_spawn(strand_, doConnect(), asio::use_future).get();
}

ResultMsg<void> ControlLink::send(MessageType type, const std::string &body)
{
	std::string frame;
	appendWire(frame, type, body, true);
	return asio::co_spawn(strand_, doSend(std::move(frame)), asio::use_future).get();
}

ResultMsg<WireMessage> ControlLink::receive(std::chrono::milliseconds timeout)
{
	return asio::co_spawn(strand_, doReceive(timeout), asio::use_future).get();
}

asio::awaitable<ResultMsg<void>> ControlLink::doConnect()
{
	if (channel_)
		channel_->abort();
	channel_.reset();
	connected_ = false;
	transport::ServiceConnectOptions connect;
	connect.host = options_.host;
	connect.port = options_.port;
	connect.service = kMigrationService;
	connect.exportName = options_.migrationId;
	connect.token = options_.token;
	connect.clientName = options_.clientName;
	connect.serverName = options_.tls.serverName;
	connect.peerRole = "the seeder";
	connect.connectTimeout = options_.connectTimeout;
	auto channel = co_await transport::connectService(strand_, connect, tls_.get());
	if (!channel)
		co_return unexpectedOf(channel.error());
	channel_ = std::move(*channel);
	connected_ = true;
	co_return ResultMsg<void>{};
}

asio::awaitable<ResultMsg<void>> ControlLink::doSend(std::string frame)
{
	if (!channel_)
		co_return fail(ENOTCONN, "not connected to the seeder");
	if (auto ec = co_await channel_->write(frame)) {
		connected_ = false;
		co_return fail(transport::toErrno(ec), "the link to the seeder failed: " + ec.message());
	}
	co_return ResultMsg<void>{};
}

asio::awaitable<ResultMsg<WireMessage>> ControlLink::doReceive(std::chrono::milliseconds timeout)
{
	if (!channel_)
		co_return fail(ENOTCONN, "not connected to the seeder");
	auto *channel = channel_.get();
	transport::StepDeadline deadline(strand_, timeout, [channel] { channel->abort(); });
	transport::FrameHeader header;
	std::vector<std::byte> meta;
	std::string reason;
	auto ec = co_await channel->readFrame(transport::FrameKind::Response, wireLimits(), header, meta, reason);
	if (ec) {
		connected_ = false;
		if (!reason.empty())
			co_return fail(EPROTO, "the seeder broke the framing: " + reason);
		if (deadline.expired())
			co_return fail(ETIMEDOUT, fmt::format("no answer from the seeder within {} ms", timeout.count()));
		co_return fail(transport::toErrno(ec), "the link to the seeder failed: " + ec.message());
	}
	auto message = decodeWire(meta);
	if (!message)
		co_return unexpectedOf(message.error());
	co_return message;
}

} // namespace r3d::migration
