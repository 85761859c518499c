#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "mount_device.hpp"
#include "registry.hpp"
#include "state_store.hpp"

namespace r3d {
class Runtime;
}

namespace r3mapd {

struct Config;

struct MountRequest {
	std::string backendUri;
	std::optional<uint64_t> size;
	std::optional<uint64_t> chunkSize; ///< default: Config::defaultChunkSize
	bool readOnly = false;
	/// Who asked: root may open any backend, others less (see openAllowedBackend()).
	uid_t callerUid = static_cast<uid_t>(-1);
};

enum class MountState { Attaching, Ready, Unmounting, Failed };

/// "attaching", "ready", "unmounting", "failed": the Mount1.State values.
const char *stateName(MountState state);

/// A snapshot of one mount.
struct MountInfo {
	std::string id;
	std::string device; ///< empty until attached
	std::string backendUri;
	uint64_t size = 0;
	uint64_t chunkSize = 0;
	bool readOnly = false;
	MountState state = MountState::Attaching;
	std::string stateMessage;
};

/// Hears about mounts appearing, changing and going away. Called from worker threads and
/// never with a manager lock held, so it may call back into the manager.
class MountObserver
{
public:
	virtual ~MountObserver() = default;
	virtual void mountAdded(const MountInfo &info) = 0;
	virtual void mountChanged(const MountInfo &info) = 0;
	virtual void mountRemoved(const std::string &id) = 0;
};

/// Owns every mount by id. Calls block (backend open, attach, flush) and are meant for
/// worker threads; list/find/stats are cheap and may be called from the bus thread.
class MountManager
{
public:
	/// Ids continue from `state`'s counter; every mount's spec is journaled there while it lives.
	MountManager(const Config &config, AttachFn attach, MountObserver &observer,
		     StateStore &state = StateStore::none(), r3d::Runtime *runtime = nullptr);
	~MountManager();
	MountManager(const MountManager &) = delete;
	MountManager &operator=(const MountManager &) = delete;

	/// Validates, opens the backend and attaches it. The mount is listed (attaching) from
	/// the moment the backend is open; on failure it disappears again.
	r3d::ResultMsg<MountInfo> mount(const MountRequest &request);
	/// Flushes, detaches and forgets a mount. Busy while it attaches or unmounts, and while
	/// its device is mounted or opened exclusively (then it stays connected).
	r3d::ResultMsg<void> unmount(const std::string &id);
	/// Opens the device for a caller; `flags` as open(2), validated (see Mount1.OpenFd).
	r3d::ResultMsg<r3d::UniqueFd> openFd(const std::string &id, uint32_t flags);

	std::vector<MountInfo> list() const;
	std::optional<MountInfo> find(const std::string &id) const;
	/// An id, "/dev/nbdN" or "nbdN" to an id.
	std::optional<std::string> resolve(const std::string &idOrDevice) const;
	/// The mount's counters (empty while it attaches).
	std::optional<r3d::Counters> counters(const std::string &id) const;

	/// Marks ready mounts whose device lost its server as failed; cheap, called
	/// periodically from the io_context.
	void checkDevices();

	/// Goes over the specs journaled by the previous run (after a crash or kill -9). Direct
	/// mounts end with the daemon that served them: their specs are logged and dropped (the
	/// stale device is reclaimed by its owner tag on the next attach). Managed mounts will
	/// be brought back here.
	void restore();

	/// Unmounts everything, for shutdown; logs failures and carries on. A device whose
	/// filesystem is still mounted is disconnected anyway, with a warning, after its
	/// filesystems were synced: the daemon is going away and cannot serve it any longer.
	void unmountAll();

private:
	struct Entry;

	/// unmount(); `force` as r3d::mount::Mount::close().
	r3d::ResultMsg<void> unmount(const std::string &id, bool force);
	/// With `onlyFrom`, nothing happens unless the mount is in that state.
	void setState(Entry &e, MountState state, std::string message, std::optional<MountState> onlyFrom = std::nullopt);

	const Config &config_;
	AttachFn attach_;
	MountObserver &observer_;
	StateStore &state_;
	r3d::Runtime *runtime_;
	mutable std::mutex mutex_;
	Registry<Entry> mounts_;
};

} // namespace r3mapd
