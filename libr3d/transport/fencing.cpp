#include "transport/fencing.hpp"

#include <fmt/format.h>

#include <r3d/log.hpp>

namespace r3d::transport {

ResultMsg<void> Fencing::admit(const Fenceable &self) const
{
	const auto &key = self.fenceKey();
	for (const auto &[other, counted] : members_) {
		if (other != &self && key.sameSlot(other->fenceKey()) && other->fenceKey().incarnation >= key.incarnation)
			return fail(ESTALE, fmt::format("connection {} of slot {} is older than one already seen ({})",
							key.incarnation, key.slot, other->fenceKey().incarnation));
	}
	return {};
}

bool Fencing::closeOlder(const Fenceable &self)
{
	const auto &key = self.fenceKey();
	bool busy = false;
	for (auto &[other, counted] : members_) {
		if (other == &self || !key.sameSlot(other->fenceKey()) || other->fenceKey().incarnation >= key.incarnation)
			continue;
		bool running = other->busy();
		if (!counted && (!other->closed() || running)) {
			counted = true;
			fenced_++;
		}
		if (!other->closed()) {
			log::get("transport")->info("{}: replaced by {} (connection {} of the client's slot {}); closing it",
						    other->peer(), self.peer(), key.incarnation, key.slot);
			other->fenceClose();
		}
		busy = busy || running;
	}
	return busy;
}

void Fencing::idle()
{
	for (auto &[member, counted] : members_)
		member->wakeFence();
}

} // namespace r3d::transport
