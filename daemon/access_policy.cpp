#include "access_policy.hpp"

#include <algorithm>
#include <charconv>

#include <grp.h>

#include <fmt/format.h>

#include "errors.hpp"

namespace r3mapd {

AccessPolicy::AccessPolicy(std::string group) : group_(std::move(group)) {}

std::optional<gid_t> AccessPolicy::groupId() const
{
	std::lock_guard lock(mutex_);
	if (gid_)
		return gid_;
	gid_t gid = 0;
	auto [end, ec] = std::from_chars(group_.data(), group_.data() + group_.size(), gid);
	if (ec == std::errc() && end == group_.data() + group_.size())
		return gid_ = gid;
	// getgrnam_r: the bus thread and workers may check at the same time.
	struct group entry {};
	struct group *found = nullptr;
	std::vector<char> buf(16384);
	if (::getgrnam_r(group_.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || !found)
		return std::nullopt;
	return gid_ = found->gr_gid;
}

r3d::ResultMsg<void> AccessPolicy::check(const Caller &caller, std::string_view action) const
{
	if (caller.uid == 0)
		return {};
	if (auto gid = groupId()) {
		if (caller.gid == *gid || std::find(caller.groups.begin(), caller.groups.end(), *gid) != caller.groups.end())
			return {};
	}
	return fail(Errc::NotPermitted, fmt::format("uid {} may not {}: only root and members of group '{}' may", caller.uid,
						    action, group_));
}

} // namespace r3mapd
