#include "transport/service_connect.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include "transport/block/messages.hpp"
#include "transport/tls.hpp"

namespace r3d::transport {

asio::awaitable<ResultMsg<std::unique_ptr<Channel>>> connectService(Strand strand, const ServiceConnectOptions &options,
								   asio::ssl::context *tls)
{
	std::string target = fmt::format("{}:{}", options.host, options.port);
	ErrorCode ec;
	tcp::resolver resolver(strand);
	tcp::socket socket(strand);
	std::unique_ptr<Channel> channel;
	StepDeadline deadline(strand, options.connectTimeout, [&] {
		resolver.cancel();
		if (channel)
			channel->abort();
		else
			socket.close(ec);
	});
	auto endpoints = co_await resolver.async_resolve(options.host, options.port,
							 asio::redirect_error(asio::use_awaitable, ec));
	if (ec)
		co_return fail(deadline.expired() ? ETIMEDOUT : toErrno(ec),
			       fmt::format("cannot resolve '{}': {}", options.host, ec.message()));
	co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
	if (ec)
		co_return fail(deadline.expired() ? ETIMEDOUT : toErrno(ec),
			       fmt::format("cannot connect to {}: {}", target, ec.message()));
	setCloexec(socket);
	socket.set_option(tcp::no_delay(true), ec);
	if (tls) {
		channel = std::make_unique<Channel>(std::move(socket), *tls);
		channel->verifyPeerName(options.serverName.empty() ? options.host : options.serverName);
		ec = co_await channel->handshake(asio::ssl::stream_base::client);
		if (ec)
			co_return fail(EPROTO, fmt::format("{}: TLS handshake failed: {}", target,
							   describeTlsError(ec, channel->sslHandle())));
	} else {
		channel = std::make_unique<Channel>(std::move(socket));
	}
	Hello hello;
	hello.exportName = options.exportName;
	hello.token = options.token;
	hello.clientName = options.clientName;
	hello.service = options.service;
	std::string frame;
	appendFrame(frame, hello);
	if (auto wec = co_await channel->write(frame))
		co_return fail(toErrno(wec), fmt::format("{}: the hello failed: {}", target, wec.message()));
	FrameHeader header;
	std::vector<std::byte> meta;
	std::string reason;
	if (auto rec = co_await channel->readFrame(FrameKind::HelloReply, FrameLimits{ kMaxHelloMeta, 0 }, header, meta,
						   reason))
		co_return fail(deadline.expired() ? ETIMEDOUT : toErrno(rec),
			       fmt::format("{}: {}", target,
					   !reason.empty() ? reason
					   : isPeerClose(rec)
						   ? std::string("the server closed the connection during the hello (TLS "
								 "or token mismatch?)")
						   : rec.message()));
	auto reply = decodeHelloReply(meta);
	if (!reply)
		co_return unexpectedOf(reply.error());
	if (reply->error)
		co_return fail(reply->error, fmt::format("{}: {} refused: {}", target, options.peerRole, reply->message));
	co_return std::move(channel);
}

} // namespace r3d::transport
