#include "access_policy.hpp"

#include <algorithm>
#include <charconv>
#include <climits>

#include <grp.h>
#include <pwd.h>

#include <fmt/format.h>

#include "errors.hpp"

namespace r3mapd {

namespace {

constexpr size_t kNssBuffer = 16384;

} // namespace

AccessPolicy::AccessPolicy(std::string group, GroupLookup lookup, std::chrono::steady_clock::duration cacheTime)
	: group_(std::move(group)), lookup_(std::move(lookup)), cacheTime_(cacheTime)
{
}

std::optional<std::vector<gid_t>> AccessPolicy::systemGroups(uid_t uid)
{
	// The _r variants: the bus thread and workers may check at the same time.
	struct passwd entry {};
	struct passwd *found = nullptr;
	std::vector<char> buf(kNssBuffer);
	if (::getpwuid_r(uid, &entry, buf.data(), buf.size(), &found) != 0 || !found)
		return std::nullopt;
	std::vector<gid_t> groups(64);
	for (;;) {
		int count = static_cast<int>(groups.size());
		if (::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) >= 0) {
			groups.resize(static_cast<size_t>(count));
			return groups;
		}
		// Too small: count now says how many there are.
		if (static_cast<size_t>(count) <= groups.size() || count > NGROUPS_MAX * 4)
			return std::vector<gid_t>{ found->pw_gid };
		groups.resize(static_cast<size_t>(count));
	}
}

std::optional<gid_t> AccessPolicy::groupId() const
{
	std::lock_guard lock(mutex_);
	if (gid_)
		return gid_;
	gid_t gid = 0;
	auto [end, ec] = std::from_chars(group_.data(), group_.data() + group_.size(), gid);
	if (ec == std::errc() && end == group_.data() + group_.size())
		return gid_ = gid;
	struct group entry {};
	struct group *found = nullptr;
	std::vector<char> buf(kNssBuffer);
	if (::getgrnam_r(group_.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || !found)
		return std::nullopt;
	return gid_ = found->gr_gid;
}

std::optional<std::vector<gid_t>> AccessPolicy::groupsOf(uid_t uid) const
{
	auto now = std::chrono::steady_clock::now();
	{
		std::lock_guard lock(mutex_);
		auto it = cache_.find(uid);
		if (it != cache_.end() && now < it->second.until)
			return it->second.groups;
	}
	// Without the lock: a slow NSS answer for one caller must not hold up the others.
	auto groups = lookup_(uid);
	std::lock_guard lock(mutex_);
	std::erase_if(cache_, [now](const auto &item) { return item.second.until <= now; });
	cache_[uid] = Cached{ groups, now + cacheTime_ };
	return groups;
}

r3d::ResultMsg<void> AccessPolicy::check(const Caller &caller, std::string_view action) const
{
	if (caller.uid == 0)
		return {};
	if (auto gid = groupId()) {
		auto groups = groupsOf(caller.uid);
		if (groups && std::find(groups->begin(), groups->end(), *gid) != groups->end())
			return {};
	}
	return fail(Errc::NotPermitted,
		    fmt::format("uid {} may not {}: only root and members of group '{}' may (membership is read "
				"from the group database: usermod -aG {} USER)",
				caller.uid, action, group_, group_));
}

} // namespace r3mapd
