#pragma once

// What the daemon (and r3serve) hold a mount through, whatever makes it: a direct mount
// (a kernel device served from a backend), a managed mount (a local cache in front of a
// remote, pulled and pushed in the background), or a memory region (userfaultfd). Nothing
// here assumes a /dev path or NBD counters.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "base/counters.hpp"

namespace r3d::mount {

enum class MountKind { Direct, Managed, Region };

/// "direct", "managed", "region": the Mount1.Kind values.
const char *kindName(MountKind kind);

class Mount
{
public:
	virtual ~Mount() = default;

	virtual MountKind kind() const = 0;
	/// Where the mount can be opened, e.g. "/dev/nbd3"; empty when it has no path (a
	/// memory region lives in its app's address space).
	virtual std::string path() const = 0;
	virtual uint64_t size() const = 0;
	/// A descriptor on the mount for a caller; `flags` as open(2) (already validated).
	virtual ResultMsg<UniqueFd> openFd(int flags) = 0;
	virtual Counters counters() const = 0;
	/// False once the mount can no longer reach its data (the kernel dropped the server's
	/// connections). Cheap; polled.
	virtual bool serving() const = 0;
	/// What holds the mount open (filesystems mounted on it), for messages.
	virtual std::vector<std::string> holders() const { return {}; }
	/// Flushes everything acknowledged to the backend and tears the mount down. Blocks;
	/// idempotent. A mount still held (a filesystem mounted on it) fails with EBUSY and
	/// stays up, unless `force`: then what can be synced is synced and it goes anyway.
	virtual ResultMsg<void> close(bool force = false) = 0;
};

} // namespace r3d::mount
