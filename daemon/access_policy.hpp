#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>

namespace r3mapd {

/// Who is calling, from the bus's credentials of the sender.
struct Caller {
	uid_t uid = static_cast<uid_t>(-1);
	gid_t gid = static_cast<gid_t>(-1);
	std::vector<gid_t> groups; ///< supplementary groups
	pid_t pid = 0;
	std::string busName; ///< unique name, for logs
};

/// Decides who may change things: root and members of one group. Checked by the daemon on
/// every mutating call, whatever the bus policy says.
class AccessPolicy
{
public:
	/// `group` is a name or a number. A name is looked up until it is found (then kept), so
	/// a group created after startup counts; while it does not exist only root is admitted.
	explicit AccessPolicy(std::string group);

	/// Fails with Errc::NotPermitted, naming the caller and `action`.
	r3d::ResultMsg<void> check(const Caller &caller, std::string_view action) const;

	const std::string &group() const { return group_; }

private:
	std::optional<gid_t> groupId() const;

	std::string group_;
	mutable std::mutex mutex_;
	mutable std::optional<gid_t> gid_; ///< once found: NSS may be slow, the bus thread asks
};

} // namespace r3mapd
