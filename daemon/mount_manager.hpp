#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "managed_request.hpp"
#include "mount/managed_region.hpp"
#include "mount_device.hpp"
#include "pipeline_lease.hpp"
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
	/// A managed mount: a local cache in front of the backend (see openManagedRegion()).
	std::optional<ManagedRequest> managed;
};

struct UnmountOptions {
	/// A managed mount skips the final push; the cache's journal keeps what is dirty.
	bool discardDirty = false;
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
	r3d::mount::MountKind kind = r3d::mount::MountKind::Direct;
	/// A managed mount's options as given (Managed1.Options), chunk-size resolved.
	std::map<std::string, std::string> managedOptions;
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

	/// Validates, opens the backend (for a managed mount: the region in front of it) and
	/// attaches it. The mount is listed (attaching) from the moment the backend is open; on
	/// failure it disappears again.
	r3d::ResultMsg<MountInfo> mount(const MountRequest &request);
	/// Flushes, detaches and forgets a mount; a managed one then pushes what is dirty (it
	/// stays, failed, if the push fails). Busy while it attaches or unmounts, and while its
	/// device is mounted or opened exclusively (then it stays connected).
	r3d::ResultMsg<void> unmount(const std::string &id, const UnmountOptions &options = {});
	/// A managed mount pushes everything dirty and returns once the remote has it.
	r3d::ResultMsg<void> sync(const std::string &id);
	/// A managed mount's cache and sync state; nullopt for other mounts, unknown ids, and
	/// a managed mount that is not attached (attaching, or its restore failed).
	std::optional<r3d::mount::ManagedStatus> managedStatus(const std::string &id) const;
	/// Lends a ready mount's pipeline (a managed one's region top, a direct one's backend) to
	/// a memory region (mount:ID); unmount() is Busy while the lease lives. NotFound for an
	/// unknown id, Busy while it attaches or goes away, BackendFailed once it failed.
	r3d::ResultMsg<PipelineLease> lease(const std::string &id);
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

	/// Runs work on a worker; false when it was not taken (shutting down).
	using Defer = std::function<bool(std::function<void()>)>;

	/// Goes over the specs journaled by the previous run (a shutdown, a crash or kill -9).
	/// Direct mounts end with the daemon that served them: their specs are logged and
	/// dropped (the stale device is reclaimed by its owner tag on the next attach).
	/// Managed mounts come back under their ids, with the same cache (resumed): each is
	/// listed at once (attaching) and mounted through `defer` (inline without one). One
	/// that cannot be mounted stays listed as failed, without a device, and keeps its spec
	/// for the next start; Unmount() forgets it.
	void restore(const Defer &defer = {});

	/// Unmounts everything, for shutdown; logs failures and carries on. A device whose
	/// filesystem is still mounted is disconnected anyway, with a warning, after its
	/// filesystems were synced: the daemon is going away and cannot serve it any longer.
	/// Managed mounts push what is dirty and keep their specs, so the next start brings
	/// them back.
	void unmountAll();

private:
	struct Entry;

	/// unmount(); `force` as r3d::mount::Mount::close(); `forget` removes the spec.
	r3d::ResultMsg<void> unmount(const std::string &id, bool force, const UnmountOptions &options, bool forget);
	/// mount() under a fresh id, or under `id` when restoring (then the entry exists).
	r3d::ResultMsg<MountInfo> mountEntry(const MountRequest &request, std::shared_ptr<Entry> restoring);
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
