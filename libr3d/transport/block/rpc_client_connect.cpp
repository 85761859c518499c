// RpcClient: making one connection of a slot: resolve, connect, TLS, hello.

#include "transport/block/rpc_client_impl.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "transport/tls.hpp"

namespace r3d::transport {

std::string RpcClient::Impl::describeFailure(const ErrorCode &ec, Channel &channel, const std::string &step) const
{
	if (channel.isTls() && isTlsError(ec))
		return fmt::format("the server refused the TLS session during {}: {}", step,
				   describeTlsError(ec, channel.sslHandle()));
	if (isPeerClose(ec))
		return fmt::format("the server closed the connection during {}", step);
	return fmt::format("{} failed: {}", step, ec.message());
}

std::string RpcClient::Impl::describeSetupFailure(const ErrorCode &ec, Channel &channel, const std::string &step) const
{
	std::string text = describeFailure(ec, channel, step);
	if (isPeerClose(ec))
		text += channel.isTls() ? " (does it use TLS? does it accept our client certificate?)"
					: " (does it require TLS? then give tls-ca=FILE)";
	return text;
}

ResultMsg<void> RpcClient::Impl::checkUnchanged(const HelloReply &reply) const
{
	if (!haveInfo)
		return {};
	if (reply.size != info.size || reply.chunkSize != info.chunkSize)
		return fail(ESTALE, fmt::format("the export changed from {} to {} bytes (chunk {} to {}); not using it",
						info.size, reply.size, info.chunkSize, reply.chunkSize));
	// Requests already split for the old limits would be refused piece by piece.
	if (reply.maxPayload < maxPayload)
		return fail(ESTALE, fmt::format("the server now takes requests of at most {} bytes, not {}; not using it",
						reply.maxPayload, maxPayload));
	if (reply.maxInFlight < maxInFlight)
		return fail(ESTALE, fmt::format("the server now takes at most {} requests in flight, not {}; not using it",
						reply.maxInFlight, maxInFlight));
	if (reply.readOnly && !info.readOnly)
		return fail(ESTALE, "the export became read-only; not using it");
	return {};
}

asio::awaitable<ResultMsg<HelloReply>> RpcClient::Impl::hello(Channel &channel, const Slot &slot)
{
	Hello h;
	h.exportName = options.exportName;
	h.token = options.token;
	h.clientName = options.clientName;
	h.session = sessionId;
	h.slot = slot.index;
	h.incarnation = slot.incarnation;
	std::string frame;
	appendFrame(frame, h);
	if (auto ec = co_await channel.write(frame))
		co_return fail(toErrno(ec), describeSetupFailure(ec, channel, "the hello"));
	FrameHeader header;
	std::vector<std::byte> meta;
	std::string reason;
	if (auto ec = co_await channel.readFrame(FrameKind::HelloReply, FrameLimits{ kMaxHelloMeta, 0 }, header, meta,
						 reason))
		co_return fail(toErrno(ec), reason.empty() ? describeSetupFailure(ec, channel, "the hello") : reason);
	auto reply = decodeHelloReply(meta);
	if (!reply)
		co_return unexpectedOf(reply.error());
	if (reply->error)
		co_return fail(reply->error, fmt::format("the server refused: {}", reply->message));
	auto unchanged = checkUnchanged(*reply);
	if (!unchanged)
		co_return unexpectedOf(unchanged.error());
	co_return reply;
}

asio::awaitable<ResultMsg<std::shared_ptr<Connection>>> RpcClient::Impl::establish(Slot &slot)
{
	auto ex = co_await asio::this_coro::executor;
	std::string target = fmt::format("{}:{}", options.host, options.port);
	ErrorCode ec;
	tcp::resolver resolver(ex);
	tcp::socket socket(ex);
	std::unique_ptr<Channel> channel;
	auto cancel = [&] {
		resolver.cancel();
		if (channel)
			channel->abort();
		else
			socket.close(ec);
	};
	slot.cancelConnect = cancel;
	slot.incarnation++;
	StepDeadline deadline(ex, options.connectTimeout, cancel);
	auto timedOut = [&](const std::string &what) -> ResultMsg<std::shared_ptr<Connection>> {
		return fail(ETIMEDOUT, fmt::format("{}: {} timed out after {} ms", target, what,
						   options.connectTimeout.count()));
	};
	struct ClearCancel {
		Slot &slot;
		~ClearCancel() { slot.cancelConnect = nullptr; }
	} clearCancel{ slot };

	auto endpoints = co_await resolver.async_resolve(options.host, options.port,
							 asio::redirect_error(asio::use_awaitable, ec));
	if (deadline.expired())
		co_return timedOut("name resolution");
	if (ec)
		co_return fail(toErrno(ec), fmt::format("cannot resolve '{}': {}", options.host, ec.message()));
	co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
	if (deadline.expired())
		co_return timedOut("connecting");
	if (ec)
		co_return fail(toErrno(ec), fmt::format("cannot connect to {}: {}", target, ec.message()));
	setCloexec(socket);
	socket.set_option(tcp::no_delay(true), ec);

	if (tls) {
		channel = std::make_unique<Channel>(std::move(socket), *tls);
		channel->verifyPeerName(options.tls.serverName.empty() ? options.host : options.tls.serverName);
		ec = co_await channel->handshake(asio::ssl::stream_base::client);
		if (deadline.expired())
			co_return timedOut("the TLS handshake");
		if (ec)
			co_return fail(EPROTO, fmt::format("{}: TLS handshake failed: {}", target,
							   isTlsError(ec)
								   ? describeTlsError(ec, channel->sslHandle())
								   : describeSetupFailure(ec, *channel, "the TLS handshake")));
	} else {
		channel = std::make_unique<Channel>(std::move(socket));
	}
	auto reply = co_await hello(*channel, slot);
	if (deadline.expired())
		co_return timedOut("the hello (the server may still be finishing the requests of the connection "
				   "this one replaces)");
	if (!reply)
		co_return fail(reply.error().code, fmt::format("{}: {}", target, reply.error().message));
	if (!reply->fenced && !warnedUnfenced) {
		log->warn("{}: the server does not fence reconnects (an older r3serve?): a write re-sent after a "
			  "lost connection may be overtaken by its first copy",
			  where);
		warnedUnfenced = true;
	}
	if (!haveInfo) {
		info = RemoteExportInfo{ reply->size, reply->chunkSize, reply->maxPayload, reply->maxInFlight,
					 reply->readOnly };
		maxPayload = std::min(options.maxPayload, reply->maxPayload ? reply->maxPayload : options.maxPayload);
		maxInFlight = std::min(options.maxInFlight, reply->maxInFlight ? reply->maxInFlight : options.maxInFlight);
		haveInfo = true;
	}
	co_return std::make_shared<Connection>(std::move(channel));
}

} // namespace r3d::transport
