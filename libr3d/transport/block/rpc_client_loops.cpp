// RpcClient: the coroutines of a slot (reconnect with backoff), of its connection (writer
// and reader) and the sweeper that enforces timeouts and deadlines.

#include "transport/block/rpc_client_impl.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>

#include <fmt/format.h>

#include <r3d/log.hpp>

namespace r3d::transport {

asio::awaitable<void> RpcClient::Impl::slotLoop(Slot &slot)
{
	auto backoff = options.backoffInitial;
	std::string lastFailure;
	auto downSince = Clock::now();
	bool everConnected = slot.connection != nullptr;
	while (!stopping) {
		if (!slot.connection) {
			auto c = co_await establish(slot);
			if (stopping)
				break;
			if (!c) {
				if (c.error().message != lastFailure)
					log->warn("{}: reconnecting: {}", where, c.error().message);
				lastFailure = c.error().message;
				setLastError(lastFailure);
				co_await slot.wake.waitFor(backoff);
				backoff = std::min(backoff * 2, options.backoffMax);
				continue;
			}
			if (everConnected) {
				reconnects++;
				log->info("{}: reconnected after {} ms", where,
					  std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - downSince)
						  .count());
			}
			everConnected = true;
			lastFailure.clear();
			setLastError({});
			slot.connection = *c;
			// The hello fenced this slot's older connections: its writes may go again.
			slot.fencePending = slot.unfenced = false;
			wakeWriters();
		}
		backoff = options.backoffInitial;
		auto c = slot.connection;
		asio::co_spawn(strand, writeLoop(slot, c), [c, alive = drain.hold()](std::exception_ptr) {
			c->writerDone = true;
			c->writerGone.notify();
		});
		co_await readLoop(*c);
		c->close(c->why.empty() ? "closed" : c->why);
		while (!c->writerDone)
			co_await c->writerGone.wait();
		slot.connection.reset();
		size_t carried = std::count_if(c->inFlight.begin(), c->inFlight.end(), [](auto &e) { return e.second; });
		requeue(slot, *c);
		if (!stopping) {
			log->warn("{}: connection lost ({}); {} requests in flight will be sent again", where, c->why,
				  carried);
			downSince = Clock::now();
		}
	}
}

asio::awaitable<void> RpcClient::Impl::writeLoop(Slot &slot, std::shared_ptr<Connection> c)
{
	SendBatch batch;
	std::vector<Call *> sending;
	for (;;) {
		while (!c->closed && !hasWork(slot, *c))
			co_await c->writerWake.wait();
		if (c->closed)
			co_return;
		batch.clear();
		sending.clear();
		size_t bytes = 0;
		bool hold = holdWrites();
		// Leave a fair share of the queues to the other connections; the slot's own
		// re-sent calls go first and count against nothing but the connection's limits.
		size_t live = std::count_if(slots.begin(), slots.end(), [](auto &s) { return s->connection; });
		size_t queued = pendingWrites.size() + pendingOthers.size();
		size_t share = std::min(kMaxCallsPerWrite, (queued + live - 1) / std::max<size_t>(live, 1));
		if (c->inFlight.empty())
			c->busySince = Clock::now(); // idle until now: the timeout starts here
		size_t fromQueues = 0;
		while (c->inFlight.size() < maxInFlight && sending.size() < kMaxCallsPerWrite && bytes < kMaxBytesPerWrite) {
			Call *call = nullptr;
			if (!hold && !slot.resend.empty()) {
				call = slot.resend.front();
				slot.resend.pop_front();
			} else if (fromQueues < share && (call = popPending(hold))) {
				fromQueues++;
			}
			if (!call)
				break;
			call->writing = true;
			c->inFlight[call->request.id] = call;
			appendFrame(batch.text(), call->request, static_cast<uint32_t>(call->out.size()));
			batch.addPayload(call->out);
			bytes += call->out.size();
			sending.push_back(call);
		}
		auto ec = co_await c->channel->write(batch.buffers());
		for (Call *call : sending) {
			call->writing = false;
			if (call->answered)
				complete(call, call->error, call->size);
		}
		if (ec) {
			c->close(describeFailure(ec, *c->channel, "sending"));
			co_return;
		}
	}
}

asio::awaitable<void> RpcClient::Impl::readLoop(Connection &c)
{
	const FrameLimits limits{ FrameLimits::kDefaultMaxMeta, maxPayload };
	std::vector<std::byte> meta;
	for (;;) {
		FrameHeader header;
		std::string reason;
		if (auto ec = co_await c.channel->readFrame(FrameKind::Response, limits, header, meta, reason)) {
			if (!c.closed)
				c.why = reason.empty() ? describeFailure(ec, *c.channel, "receiving") : reason;
			co_return;
		}
		auto response = decodeResponse(meta);
		if (!response) {
			c.why = response.error().message;
			co_return;
		}
		// By key, never through an iterator: the writer adds to the map while this
		// coroutine waits for payload bytes.
		auto it = c.inFlight.find(response->id);
		if (it == c.inFlight.end()) {
			c.why = fmt::format("reply to request {}, which is not in flight", response->id);
			co_return;
		}
		Call *call = it->second;
		if (!call) { // its caller gave up; drop the reply
			if (header.payloadLength > 0 && co_await c.channel->skip(header.payloadLength))
				co_return;
			c.inFlight.erase(response->id);
			c.writerWake.notify();
			continue;
		}
		uint64_t expected = response->error ? 0 : replyPayloadLength(call->request);
		if (header.payloadLength != expected) {
			c.why = fmt::format("reply to {} request {} carries {} bytes, expected {}", opName(call->request.op),
					    response->id, header.payloadLength, expected);
			co_return;
		}
		if (expected > 0) {
			call->receiving = true;
			auto ec = co_await c.channel->readExact(call->in.first(expected));
			call->receiving = false;
			if (ec) {
				if (!c.closed)
					c.why = describeFailure(ec, *c.channel, "receiving");
				co_return;
			}
		}
		c.inFlight.erase(response->id);
		if (call->writing) {
			call->error = response->error;
			call->size = response->size;
			call->answered = true;
		} else {
			complete(call, response->error, response->size);
		}
		c.writerWake.notify();
	}
}

uint64_t RpcClient::Impl::sweepConnection(Connection &c, Clock::time_point now)
{
	if (!c.inFlight.empty() && now - c.progress() > options.requestTimeout) {
		log->warn("{}: no progress for {} ms with {} requests in flight; reconnecting", where,
			  options.requestTimeout.count(), c.inFlight.size());
		c.close("request timeout", true);
		return 0;
	}
	uint64_t gaveUp = 0;
	for (auto &[id, call] : c.inFlight) {
		if (!call || now < call->deadline)
			continue;
		if (call->mutating()) {
			// Failing it alone would leave its copy free to land later: reset the
			// connection, so the slot's next hello fences it.
			log->warn("{}: a {} passed its deadline in flight; resetting the connection", where,
				  opName(call->request.op));
			c.close("a write passed its deadline", true);
			return gaveUp;
		}
		// A read whose bytes are not being moved can be failed now; its reply, if any,
		// is dropped when it arrives.
		if (!call->busy()) {
			complete(call, EIO, 0);
			call = nullptr;
			gaveUp++;
		}
	}
	return gaveUp;
}

asio::awaitable<void> RpcClient::Impl::sweepLoop()
{
	while (!stopping) {
		co_await sweepWake->waitFor(kSweepInterval);
		if (stopping)
			co_return;
		auto now = Clock::now();
		uint64_t gaveUp = expire(pendingWrites, now) + expire(pendingOthers, now);
		for (auto &slot : slots) {
			size_t lost = expire(slot->resend, now);
			if (lost > 0 && slot->fencePending)
				slot->unfenced = true;
			gaveUp += lost;
			if (slot->connection && !slot->connection->closed)
				gaveUp += sweepConnection(*slot->connection, now);
		}
		if (gaveUp > 0) {
			expired += gaveUp;
			log->error("{}: {} requests failed with EIO: not done within the {} ms deadline", where, gaveUp,
				   options.deadline.count());
		}
	}
}

} // namespace r3d::transport
