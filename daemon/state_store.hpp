#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

namespace r3mapd {

/// What r3mapd keeps across restarts, under the unit's StateDirectory (/var/lib/r3map):
/// per kind of object ("mounts", later "migrations", "regions", "syncs") the next id to
/// hand out and one JSON spec per live object. Every update is a new file written, fsynced
/// and renamed over the old one, then the directory fsynced, so a kill -9 at any instant
/// leaves the old version or the new one, never a torn file.
///
/// Layout: DIR/KIND/next (the counter), DIR/KIND/ID.json (a spec).
/// A store opened on "" keeps nothing (ids restart at 1, as r3mapd run by hand does).
class StateStore
{
public:
	static r3d::ResultMsg<std::unique_ptr<StateStore>> open(const std::string &dir);
	/// A store that keeps nothing, for managers built without one (tests).
	static StateStore &none();

	bool persistent() const { return !dir_.empty(); }
	const std::string &dir() const { return dir_; }

	/// The first id not handed out yet (1 for a new store).
	uint64_t nextId(const std::string &kind) const;
	/// Records that ids below `next` are taken.
	r3d::ResultMsg<void> setNextId(const std::string &kind, uint64_t next);

	r3d::ResultMsg<void> save(const std::string &kind, const std::string &id, const nlohmann::json &spec);
	r3d::ResultMsg<void> remove(const std::string &kind, const std::string &id);
	/// Every spec of `kind` by id, in id order. A file that does not parse is reported in
	/// `bad` (path: reason) and skipped, never fatal: one corrupt spec must not keep the
	/// daemon from starting.
	std::vector<std::pair<std::string, nlohmann::json>> load(const std::string &kind,
								 std::vector<std::string> *bad = nullptr) const;

private:
	explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
	r3d::ResultMsg<void> writeAtomically(const std::string &kind, const std::string &name,
					     const std::string &text);
	r3d::ResultMsg<std::string> kindDir(const std::string &kind);

	std::string dir_;
};

} // namespace r3mapd
