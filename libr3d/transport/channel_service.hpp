#pragma once

// A service of an RpcServer that takes a connection over once the transport hello has named
// it and passed authentication (TLS, token): it answers the hello itself and runs its own
// exchange on the channel, on the server's strand. The block service is built into the
// session; migration is one of these (migration/seeder_session.hpp).

#include <functional>
#include <memory>

#include <boost/asio/awaitable.hpp>

#include <r3d/result.hpp>

#include "transport/block/messages.hpp"
#include "transport/channel.hpp"

namespace r3d::transport {

class ChannelService
{
public:
	virtual ~ChannelService() = default;
	/// Runs the connection from the hello reply on, on the server's strand; returns when it
	/// ends. The session closes the channel afterwards.
	virtual asio::awaitable<void> run(Channel &channel, Strand strand) = 0;
	/// The server stops or drops the connection: end run() soon. On the strand.
	virtual void close() = 0;
};

/// Binds a connection to a ChannelService from its hello, or refuses it (the error is the
/// hello reply's).
using ChannelServiceFactory = std::function<ResultMsg<std::shared_ptr<ChannelService>>(const Hello &hello)>;

} // namespace r3d::transport
