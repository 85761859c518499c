#pragma once

// What the sessions of one RpcServer share: options, exports, TLS and token, counters, and
// the strand-only state (sessions, fencing, the in-flight budget).

#include <atomic>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "base/runtime.hpp"
#include "transport/block/messages.hpp"
#include "transport/block/request_check.hpp"
#include "transport/block/rpc_server.hpp"
#include "transport/channel.hpp"
#include "transport/channel_service.hpp"
#include "transport/drain.hpp"
#include "transport/fencing.hpp"
#include "transport/in_flight_budget.hpp"
#include "transport/service_table.hpp"

namespace spdlog {
class logger;
}

namespace r3d::transport {

class RpcSession;

/// An export as served: the backend, behind a chunk guard when chunked.
struct ServedExport {
	RpcExport exp;
	std::shared_ptr<ReadWriterAt> target;
	ExportGeometry geometry;
};

/// What a hello binds its connection to: an export of the block service, or a service
/// that takes the connection over.
struct ServiceBinding {
	const ServedExport *exp = nullptr;
	std::shared_ptr<ChannelService> channel;
};

struct RpcServerState {
	RpcServerState(Runtime &rt, RpcServerOptions o);

	Runtime &runtime;
	Strand strand;
	RpcServerOptions options;
	std::shared_ptr<asio::ssl::context> tls;
	std::string token;
	std::vector<ServedExport> exports;
	/// Service name -> what a hello binds its connection to.
	ServiceTable<ServiceBinding, Hello> services;
	std::shared_ptr<spdlog::logger> log;

	std::atomic<uint64_t> connections{ 0 }, activeConnections{ 0 }, refused{ 0 }, requests{ 0 }, errors{ 0 },
		bytesRead{ 0 }, bytesWritten{ 0 }, writeTimeouts{ 0 };
	std::atomic<bool> stopped{ false };

	// Strand only.
	std::unordered_set<RpcSession *> sessions; ///< until their backend calls have returned
	Fencing fencing;
	InFlightBudget budget;
	unsigned pendingHellos = 0;
	Clock::time_point lastCapWarning;

	/// Held by every coroutine and session, so stop() can wait for them.
	Drain drain;

	const ServedExport *findExport(const std::string &name) const;
	std::string exportNames() const;
	/// Whether to warn about a refusal at a cap now: at most once a second.
	bool capWarningDue();
};

} // namespace r3d::transport
