// RpcClient: the queues of calls not sent yet, the slots' resends, and which connection
// takes what.

#include "transport/block/rpc_client_impl.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

namespace r3d::transport {

void RpcClient::Impl::submit(Call &call)
{
	call.deadline = Clock::now() + options.deadline;
	asio::post(strand, [this, &call] { enqueue(&call); });
}

Result<void> RpcClient::Impl::wait(Call &call)
{
	call.done.acquire();
	if (call.error)
		return unexpected(call.error);
	return {};
}

void RpcClient::Impl::setLastError(std::string text)
{
	std::lock_guard lock(lastErrorMutex);
	lastError = std::move(text);
}

void RpcClient::Impl::enqueue(Call *call)
{
	if (stopping) {
		complete(call, ECANCELED, 0);
		return;
	}
	call->request.id = nextId++;
	(call->mutating() ? pendingWrites : pendingOthers).push_back(call);
	wakeWriters();
}

void RpcClient::Impl::complete(Call *call, int error, uint64_t size)
{
	call->error = error;
	call->size = size;
	call->done.release(); // the caller may free `call` from here on
}

void RpcClient::Impl::wakeWriters()
{
	for (auto &slot : slots)
		if (slot->connection)
			slot->connection->writerWake.notify();
}

void RpcClient::Impl::requeue(Slot &slot, Connection &c)
{
	std::vector<Call *> calls;
	for (auto &[id, call] : c.inFlight)
		if (call)
			calls.push_back(call);
	c.inFlight.clear();
	// Oldest first, ahead of everything that never went out.
	std::sort(calls.begin(), calls.end(), [](Call *a, Call *b) { return a->request.id > b->request.id; });
	for (Call *call : calls) {
		call->writing = call->receiving = call->answered = false;
		if (call->mutating()) {
			slot.resend.push_front(call);
			slot.fencePending = true;
		} else {
			pendingOthers.push_front(call);
		}
	}
	resent += calls.size();
	if (!calls.empty())
		wakeWriters();
}

size_t RpcClient::Impl::expire(std::deque<Call *> &queue, Clock::time_point now)
{
	size_t before = queue.size();
	std::erase_if(queue, [&](Call *call) {
		if (now < call->deadline)
			return false;
		complete(call, EIO, 0);
		return true;
	});
	return before - queue.size();
}

bool RpcClient::Impl::holdWrites() const
{
	return std::any_of(slots.begin(), slots.end(), [](auto &s) { return s->unfenced; });
}

bool RpcClient::Impl::hasWork(const Slot &slot, const Connection &c) const
{
	if (c.inFlight.size() >= maxInFlight)
		return false;
	bool hold = holdWrites();
	if (!hold && !slot.resend.empty())
		return true;
	bool queued = !pendingOthers.empty() || (!hold && !pendingWrites.empty());
	return queued && !busierThanOthers(c);
}

Call *RpcClient::Impl::popPending(bool hold)
{
	bool takeWrite = !hold && !pendingWrites.empty() &&
			 (pendingOthers.empty() || pendingWrites.front()->request.id < pendingOthers.front()->request.id);
	auto &queue = takeWrite ? pendingWrites : pendingOthers;
	if (queue.empty())
		return nullptr;
	Call *call = queue.front();
	queue.pop_front();
	return call;
}

bool RpcClient::Impl::busierThanOthers(const Connection &c) const
{
	for (const auto &slot : slots)
		if (slot->connection && !slot->connection->closed && slot->connection->inFlight.size() < c.inFlight.size())
			return true;
	return false;
}

} // namespace r3d::transport
