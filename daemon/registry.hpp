#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "object_id.hpp"

namespace r3mapd {

/// The objects of one kind (mounts, exports; next migrations, regions, syncs) by id. Ids
/// are "1", "2", ... in creation order and are never handed out twice: with a StateStore
/// the counter survives restarts, so /org/r3map/mounts/3 names one mount only, ever.
/// Not locked: the owning manager guards it with its own mutex, together with the state
/// of its entries.
template <class Entry>
class Registry
{
public:
	/// The next id to hand out is at least `next` (restored from the state store).
	void reserveBelow(uint64_t next)
	{
		if (next > nextId_)
			nextId_ = next;
	}
	uint64_t nextId() const { return nextId_; }

	/// Adds `entry` under a fresh id, or under `id` when restoring one; returns the id.
	std::string add(std::shared_ptr<Entry> entry, std::optional<uint64_t> id = std::nullopt)
	{
		uint64_t n = id.value_or(nextId_);
		reserveBelow(n + 1);
		entries_[n] = std::move(entry);
		return std::to_string(n);
	}

	std::shared_ptr<Entry> find(const std::string &id) const
	{
		auto n = parseObjectId(id);
		if (!n)
			return nullptr;
		auto it = entries_.find(*n);
		return it == entries_.end() ? nullptr : it->second;
	}

	void erase(const std::string &id)
	{
		if (auto n = parseObjectId(id))
			entries_.erase(*n);
	}

	/// fn(id, entry) for each entry in creation order.
	template <class Fn>
	void forEach(Fn &&fn) const
	{
		for (const auto &[n, e] : entries_)
			fn(std::to_string(n), e);
	}

	bool empty() const { return entries_.empty(); }

private:
	std::map<uint64_t, std::shared_ptr<Entry>> entries_;
	uint64_t nextId_ = 1;
};

} // namespace r3mapd
