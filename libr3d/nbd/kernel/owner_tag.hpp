#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace r3d::nbd::kernel {

/// Who attached a device, written into the netlink backend identifier
/// (/sys/block/nbdN/backend) as "r3map:PID:STARTTIME:PIDNS:NAME". A device connected
/// through netlink outlives a process killed with -9; the tag lets a later attach tell
/// such a stale device (owner gone) from a live one, even across PID reuse (start time)
/// and without touching devices of other PID namespaces.
struct OwnerTag {
	pid_t pid = 0;
	uint64_t startTime = 0;  ///< /proc/PID/stat field 22, in clock ticks since boot
	uint64_t pidNamespace = 0; ///< inode of /proc/self/ns/pid
	std::string name;

	/// The calling process. `name` is truncated so the tag stays short.
	static OwnerTag self(std::string_view name, const std::string &procRoot = "/proc");
	static std::optional<OwnerTag> parse(std::string_view text);
	std::string format() const;

	/// Whether the tagged process still runs (same pid and start time). Always true for
	/// a tag from another PID namespace: we cannot see its processes.
	bool alive(const std::string &procRoot = "/proc") const;

	/// Start time of `pid` from procfs, nullopt when there is no such process.
	static std::optional<uint64_t> startTimeOf(pid_t pid, const std::string &procRoot = "/proc");
	static uint64_t pidNamespaceOf(const std::string &procRoot = "/proc");
};

} // namespace r3d::nbd::kernel
