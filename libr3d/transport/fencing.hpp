#pragma once

// Fencing of reconnected client slots, for any service whose calls change data. A client
// names each connection (session, slot, incarnation) in its hello. A connection (S, k, n)
// closes the connections (S, k, m < n) at once with a reset, dropping what they have not
// read, and waits until their running data-changing calls have returned before it answers
// its hello. A request the client sends again on the new connection therefore runs after
// every copy of it sent before. Used on the server's strand only (but fenced()).

#include <atomic>
#include <cstdint>
#include <string>
#include <unordered_map>

#include <r3d/result.hpp>

namespace r3d::transport {

/// Who a connection is; an empty session: the client does not ask for fencing.
struct FenceKey {
	std::string session;
	uint32_t slot = 0;
	uint64_t incarnation = 0;

	bool sameSlot(const FenceKey &o) const { return !session.empty() && o.session == session && o.slot == slot; }
};

/// A connection as fencing sees it.
class Fenceable
{
public:
	virtual const FenceKey &fenceKey() const = 0;
	virtual const std::string &peer() const = 0;
	virtual bool closed() const = 0;
	/// Whether a call of it that changes data is running.
	virtual bool busy() = 0;
	/// Closes with a reset, so nothing it has not read is executed, and drops its queued calls.
	virtual void fenceClose() = 0;
	/// Wakes it if it waits in fence(): a connection it waits for went idle.
	virtual void wakeFence() = 0;

protected:
	~Fenceable() = default;
};

class Fencing
{
public:
	/// `self` takes part from its hello on, until its data-changing calls have returned
	/// after it closed (a newer connection of its slot may have to wait for them).
	void join(Fenceable &self) { members_.emplace(&self, false); }
	void leave(Fenceable &self) { members_.erase(&self); }

	/// Fails with ESTALE when a connection of the slot as new as `self` or newer was seen.
	ResultMsg<void> admit(const Fenceable &self) const;
	/// Closes the older connections of `self`'s slot; returns whether one of them still
	/// has a data-changing call running (then wait for wakeFence() and call again).
	bool closeOlder(const Fenceable &self);
	/// A closed connection's last data-changing call returned: wake those waiting.
	void idle();

	/// Connections a newer one closed or waited for; any thread.
	uint64_t fenced() const { return fenced_; }

private:
	std::unordered_map<Fenceable *, bool> members_; ///< whether counted in fenced_
	std::atomic<uint64_t> fenced_{ 0 };
};

} // namespace r3d::transport
