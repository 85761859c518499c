#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>

namespace r3mapd {

/// Who is calling: the uid the bus daemon took from the sender's socket when it connected.
/// Nothing else the sender's process could change later (its groups, its /proc) is trusted.
struct Caller {
	uid_t uid = static_cast<uid_t>(-1);
	pid_t pid = 0;       ///< for logs only: it may have been reused
	std::string busName; ///< unique name, for logs
};

/// Decides who may change things: root and members of one group. Checked by the daemon on
/// every mutating call, whatever the bus policy says. Membership comes from the user and
/// group databases for the caller's uid (getpwuid_r, getgrouplist), never from the
/// caller's process, which could join or leave groups after connecting.
class AccessPolicy
{
public:
	/// The gids of a uid (its primary group and every group listing it); nullopt when the
	/// uid has no user entry.
	using GroupLookup = std::function<std::optional<std::vector<gid_t>>(uid_t)>;
	/// How long an answer of the databases is kept: the bus thread asks on every mutating
	/// call, and NSS may be slow (LDAP).
	static constexpr std::chrono::seconds kCacheTime{ 5 };

	/// `group` is a name or a number. A name is looked up until it is found (then kept), so
	/// a group created after startup counts; while it does not exist only root is admitted.
	explicit AccessPolicy(std::string group, GroupLookup lookup = systemGroups,
			      std::chrono::steady_clock::duration cacheTime = kCacheTime);

	/// Fails with Errc::NotPermitted, naming the caller and `action`.
	r3d::ResultMsg<void> check(const Caller &caller, std::string_view action) const;

	/// The access group's gid; nullopt while a group name does not exist.
	std::optional<gid_t> groupId() const;

	/// The GroupLookup of the system: getpwuid_r, then getgrouplist.
	static std::optional<std::vector<gid_t>> systemGroups(uid_t uid);

private:
	struct Cached {
		std::optional<std::vector<gid_t>> groups;
		std::chrono::steady_clock::time_point until;
	};

	std::optional<std::vector<gid_t>> groupsOf(uid_t uid) const;

	std::string group_;
	GroupLookup lookup_;
	std::chrono::steady_clock::duration cacheTime_;
	mutable std::mutex mutex_;
	mutable std::optional<gid_t> gid_; ///< once found: NSS may be slow, the bus thread asks
	mutable std::map<uid_t, Cached> cache_;
};

} // namespace r3mapd
