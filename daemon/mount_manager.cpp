#include "mount_manager.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <shared_mutex>

#include <fcntl.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <r3d/log.hpp>
#include <r3d/size.hpp>

#include "backend_opener.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "managed_opener.hpp"
#include "push_progress.hpp"
#include "mount/managed_mount.hpp"
#include "state_store.hpp"
#include "stages/pipeline.hpp"
#include "sync_managed.hpp"

namespace r3mapd {

struct MountManager::Entry {
	MountInfo info; ///< guarded by MountManager::mutex_
	/// Set once when attached; shared so a statistics read never waits for a flush.
	std::shared_ptr<r3d::mount::Mount> device;
	/// A managed mount's region, set with `device`; kept after the device is detached
	/// until its final push succeeded.
	std::shared_ptr<r3d::mount::ManagedRegion> region;
	bool detached = false; ///< the device is closed; only the region's push is left
	PushProgress pushed;
	/// openFd() holds it shared, unmount() exclusively while the device closes.
	std::shared_mutex ioMutex;
	/// What lease() lends, set with `device`: `diverter` and what is behind it.
	std::shared_ptr<r3d::ReadWriterAt> pipeline;
	std::shared_ptr<r3d::stages::LockableReadWriterAt> diverter;
	/// Leases out; taken under MountManager::mutex_, given back from anywhere.
	std::atomic<unsigned> leases{ 0 };
};

namespace {

constexpr uint32_t kAllowedOpenFlags = O_ACCMODE | O_SYNC | O_DSYNC | O_DIRECT | O_NONBLOCK | O_CLOEXEC;

} // namespace

const char *stateName(MountState state)
{
	switch (state) {
	case MountState::Attaching:
		return "attaching";
	case MountState::Ready:
		return "ready";
	case MountState::Unmounting:
		return "unmounting";
	case MountState::Failed:
		return "failed";
	}
	return "failed";
}

namespace {

constexpr const char *kKind = "mounts";

nlohmann::json specOf(const MountRequest &request, const MountInfo &info)
{
	bool managed = info.kind == r3d::mount::MountKind::Managed;
	nlohmann::json spec{ { "kind", managed ? "managed" : "direct" },
			     { "backend", request.backendUri },
			     { "chunk_size", info.chunkSize },
			     { "read_only", request.readOnly },
			     { "caller_uid", request.callerUid },
			     { "device", info.device } };
	if (request.size)
		spec["size"] = *request.size;
	if (managed && request.managed) {
		spec["managed"] = request.managed->spec(info.chunkSize);
		spec["region_size"] = info.size;
	}
	return spec;
}

// The request a managed spec was made from; what the caller may use is checked again
// with the uid it came from, against today's configuration.
r3d::ResultMsg<MountRequest> requestOf(const nlohmann::json &spec)
{
	return requestFromSpec<MountRequest>(spec, "a mount", [&](MountRequest &r) {
		if (spec.contains("size"))
			r.size = spec.at("size").get<uint64_t>();
		r.readOnly = spec.value("read_only", false);
	});
}

// What closes a mount: the device (which flushes the kernel's writes into the backend or
// region), then a managed mount's region (the push). A device still held (EBUSY without
// `force`) is left as it was, region included.
struct Closed {
	r3d::ResultMsg<void> device;
	r3d::ResultMsg<void> push;
};

Closed closeMount(r3d::mount::Mount *device, bool detached, r3d::mount::ManagedRegion *region, bool force,
		  bool discardDirty, const r3d::mount::Progress &progress)
{
	Closed c;
	if (device && !detached) {
		// A ManagedMount's own close would push with discardDirty false: close its device.
		auto *managed = dynamic_cast<r3d::mount::ManagedMount *>(device);
		c.device = managed ? managed->device().close(force) : device->close(force);
	}
	bool held = !c.device && c.device.error().code == std::error_code(EBUSY, std::system_category()) && !force;
	if (region && !held)
		c.push = region->close(discardDirty, progress);
	return c;
}

} // namespace

MountManager::MountManager(const Config &config, AttachFn attach, MountObserver &observer, StateStore &state,
			   r3d::Runtime *runtime)
	: config_(config), attach_(std::move(attach)), observer_(observer), state_(state), runtime_(runtime)
{
	mounts_.reserveBelow(state_.nextId(kKind));
}

void MountManager::restore(const Defer &defer)
{
	auto log = r3d::log::get("mount");
	std::vector<std::string> bad;
	for (const auto &[id, spec] : state_.load(kKind, &bad)) {
		if (spec.value("kind", "direct") != "managed") {
			log->warn("mount {} of the previous run ({} on {}) ended with it: direct mounts are not restored",
				  id, spec.value("backend", "?"), spec.value("device", "no device"));
			if (auto ok = state_.remove(kKind, id); !ok)
				log->warn("{}", ok.error().message);
			continue;
		}
		auto request = requestOf(spec);
		if (!request) {
			log->error("mount {}: cannot restore it: {}; its spec stays in {}", id, request.error().message,
				   state_.dir());
			continue;
		}
		auto e = std::make_shared<Entry>();
		MountInfo snapshot;
		{
			std::lock_guard lock(mutex_);
			e->info.backendUri = request->backendUri;
			e->info.size = spec.value("region_size", uint64_t{ 0 });
			e->info.chunkSize = spec.value("chunk_size", uint64_t{ 0 });
			e->info.readOnly = request->readOnly;
			e->info.kind = r3d::mount::MountKind::Managed;
			e->info.managedOptions = request->managed->given;
			e->info.stateMessage = "restoring";
			e->info.id = mounts_.add(e, *parseObjectId(id));
			snapshot = e->info;
		}
		observer_.mountAdded(snapshot);
		log->info("mount {}: restoring the managed mount of {} (cache {})", id, request->backendUri,
			  request->managed->options.cache.empty() ? "in memory" : request->managed->options.cache);
		auto job = [this, e, request = std::move(*request)] {
			// A restore that fails keeps the entry, failed, and the spec for the next start.
			if (auto r = mountEntry(request, e); !r) {
				auto message = fmt::format("restore failed: {}", r.error().message);
				r3d::log::get("mount")->error("mount {}: {}; Unmount forgets it, a restart tries again",
							      e->info.id, message);
				setState(*e, MountState::Failed, message);
			}
		};
		if (!defer || !defer(job))
			job();
	}
	for (const auto &b : bad)
		log->warn("state: ignoring {}", b);
}

MountManager::~MountManager()
{
	mounts_.forEach([](const std::string &, const std::shared_ptr<Entry> &e) {
		if (e->device)
			(void)e->device->close();
	});
}

r3d::ResultMsg<MountInfo> MountManager::mount(const MountRequest &request)
{
	return mountEntry(request, nullptr);
}

r3d::ResultMsg<MountInfo> MountManager::mountEntry(const MountRequest &request, std::shared_ptr<Entry> restoring)
{
	auto log = r3d::log::get("mount");
	bool managed = request.managed.has_value();
	if (managed && request.readOnly)
		return fail(Errc::InvalidArgument, "managed does not go with read_only: mount the remote directly instead");
	if (managed && request.chunkSize)
		return fail(Errc::InvalidArgument, "a managed mount's chunk is the managed option chunk-size, not chunk_size");
	uint64_t chunk = request.chunkSize.value_or(config_.defaultChunkSize);
	if (auto ok = checkChunkSize(chunk); !ok && !managed)
		return rename(Errc::InvalidArgument, ok.error());
	std::shared_ptr<r3d::ReadWriterAt> backend;
	std::shared_ptr<r3d::mount::ManagedRegion> region;
	if (managed) {
		auto opened = openManagedRegion(config_, state_.dir(), request.backendUri, request.size, *request.managed,
						request.callerUid, runtime_);
		if (!opened)
			return r3d::unexpectedOf(opened.error());
		region = std::move(*opened);
		backend = region->top();
		chunk = region->chunk();
	} else {
		auto opened = openAllowedBackend(config_, request.backendUri, request.size, request.callerUid, runtime_);
		if (!opened)
			return r3d::unexpectedOf(opened.error());
		backend = std::move(*opened);
		// What the backend is really read and written at: a chunk store keeps its own.
		auto resolved = r3d::stages::resolveChunk(chunk, backend->preferredChunk());
		if (!resolved)
			return rename(Errc::InvalidArgument, resolved.error());
		chunk = *resolved;
	}

	// Under everything that reads and writes the mount: a seeder diverts its I/O here.
	auto diverter = std::make_shared<r3d::stages::LockableReadWriterAt>(std::move(backend));
	backend = diverter;

	auto e = restoring ? restoring : std::make_shared<Entry>();
	MountInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		e->info.backendUri = request.backendUri;
		e->info.size = backend->size();
		e->info.chunkSize = chunk;
		e->info.readOnly = request.readOnly;
		e->info.state = MountState::Attaching;
		e->info.kind = managed ? r3d::mount::MountKind::Managed : r3d::mount::MountKind::Direct;
		if (managed) {
			e->info.managedOptions = request.managed->given;
			e->info.managedOptions["chunk-size"] = std::to_string(chunk);
			e->info.managedOptions.erase("discard-local");
		}
		if (!restoring)
			e->info.id = mounts_.add(e);
		snapshot = e->info;
	}
	const std::string id = snapshot.id;
	if (!restoring) {
		// The id is taken before anything can go wrong, so no crash makes it come back.
		if (auto ok = state_.setNextId(kKind, std::stoull(id) + 1); !ok)
			log->warn("mount {}: {}", id, ok.error().message);
		observer_.mountAdded(snapshot);
	}
	if (managed) {
		auto s = region->status();
		log->info("mount {}: attaching the managed region of {} ({}, chunk {}, cache {}{})", id, request.backendUri,
			  r3d::formatSize(snapshot.size), r3d::formatSize(chunk), s.cache.empty() ? "in memory" : s.cache,
			  s.resumed ? ", resumed" : "");
	} else {
		log->info("mount {}: attaching {} ({}, chunk {}{})", id, request.backendUri, r3d::formatSize(snapshot.size),
			  r3d::formatSize(chunk), request.readOnly ? ", read-only" : "");
	}

	AttachParams params;
	params.backend = backend;
	params.chunkSize = chunk;
	params.readOnly = request.readOnly;
	params.name = request.backendUri;
	params.region = region;
	params.maxRequest = static_cast<uint32_t>(config_.maxRequestSize);
	auto device = attach_(std::move(params));
	if (!device) {
		// The region's destructor stops its workers; a cache directory keeps its journal.
		if (restoring)
			return r3d::unexpectedOf(device.error());
		{
			std::lock_guard lock(mutex_);
			mounts_.erase(id);
		}
		observer_.mountRemoved(id);
		log->warn("mount {}: attach failed: {}", id, device.error().message);
		return r3d::unexpectedOf(device.error());
	}
	{
		std::lock_guard lock(mutex_);
		e->device = std::shared_ptr<r3d::mount::Mount>(std::move(*device));
		e->region = region;
		e->pipeline = std::move(backend);
		e->diverter = std::move(diverter);
		e->info.device = e->device->path();
		e->info.state = MountState::Ready;
		e->info.stateMessage = restoring ? "restored" : "";
		snapshot = e->info;
	}
	if (auto ok = state_.save(kKind, id, specOf(request, snapshot)); !ok)
		log->warn("mount {}: not journaled: {}", id, ok.error().message);
	observer_.mountChanged(snapshot);
	log->info("mount {}: {} ready{}", id, snapshot.device, restoring ? " (restored)" : "");
	return snapshot;
}

void MountManager::setState(Entry &e, MountState state, std::string message, std::optional<MountState> onlyFrom)
{
	MountInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		if (onlyFrom && e.info.state != *onlyFrom)
			return;
		e.info.state = state;
		e.info.stateMessage = std::move(message);
		snapshot = e.info;
	}
	observer_.mountChanged(snapshot);
}

r3d::ResultMsg<void> MountManager::unmount(const std::string &id, const UnmountOptions &options)
{
	return unmount(id, false, options, true);
}

r3d::ResultMsg<void> MountManager::unmount(const std::string &id, bool force, const UnmountOptions &options,
					   bool forget)
{
	auto log = r3d::log::get("mount");
	std::shared_ptr<Entry> e;
	bool failed = false;
	{
		std::lock_guard lock(mutex_);
		e = mounts_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no mount '{}'", id));
		if (e->info.state == MountState::Attaching || e->info.state == MountState::Unmounting)
			return fail(Errc::Busy, fmt::format("mount {} is {}", id, stateName(e->info.state)));
		if (unsigned n = e->leases.load())
			return fail(Errc::Busy,
				    fmt::format("mount {} is lent to {} memory region{} or migration{}: unmap or cancel {} first",
						id, n, n == 1 ? "" : "s", n == 1 ? "" : "s", n == 1 ? "it" : "them"));
		failed = e->info.state == MountState::Failed;
		// No lease from here on (setState() below tells the observers).
		e->info.state = MountState::Unmounting;
	}
	MountState before = failed ? MountState::Failed : MountState::Ready;
	setState(*e, MountState::Unmounting, "unmount requested");
	if (e->region && options.discardDirty)
		log->warn("mount {}: unmounting with discard-dirty: what is dirty is not pushed to {}", id,
			  e->info.backendUri);
	Closed c;
	{
		std::unique_lock io(e->ioMutex);
		c = closeMount(e->device.get(), e->detached, e->region.get(), force, options.discardDirty,
			       e->pushed.callback());
		if (e->device && c.device)
			e->detached = true;
	}
	r3d::ResultMsg<void> closed = c.device;
	if (!closed) {
		// EBUSY: still mounted or opened exclusively; the device was left connected.
		bool held = closed.error().code == std::error_code(EBUSY, std::system_category());
		closed = rename(held ? Errc::Busy : Errc::BackendFailed, closed.error());
	}
	if (!closed && force) {
		// Disconnected all the same, after its filesystems were synced; at most the
		// mounted filesystem still holds the device until it is unmounted.
		log->warn("mount {}: forced: {}", id, closed.error().message);
		closed = {};
	}
	if (!closed && closed.error().code == make_error_code(Errc::Busy)) {
		// Still mounted or held open exclusively: the device stays connected and served,
		// nothing was lost, and Unmount can be retried once it is released.
		setState(*e, before, closed.error().message);
		return fail(Errc::Busy, closed.error().message);
	}
	if (!closed && failed && (!e->region || c.push)) {
		// The device had already lost its server: nothing more can reach the backend, and
		// what the server acknowledged is there (a managed mount's region has pushed it).
		// Clean up rather than fail again.
		log->warn("mount {}: cleaning up after the failure: {}", id, closed.error().message);
		closed = {};
	}
	if (closed && !c.push)
		closed = fail(Errc::BackendFailed, c.push.error().message);
	if (!closed) {
		// Keep it: the data may not be in the backend yet, and Unmount can be retried.
		auto message = fmt::format("unmount failed: {}", closed.error().message);
		log->error("mount {}: {}", id, message);
		setState(*e, MountState::Failed, message);
		return fail(classify(closed.error().code), message);
	}
	{
		std::lock_guard lock(mutex_);
		mounts_.erase(id);
	}
	if (forget)
		if (auto ok = state_.remove(kKind, id); !ok)
			log->warn("mount {}: {}", id, ok.error().message);
	observer_.mountRemoved(id);
	log->info("mount {}: unmounted{}", id, forget ? "" : " (kept for the next start)");
	return {};
}

r3d::ResultMsg<PipelineLease> MountManager::lease(const std::string &id)
{
	std::lock_guard lock(mutex_);
	auto e = mounts_.find(id);
	if (!e)
		return fail(Errc::NotFound, fmt::format("no mount '{}'", id));
	if (e->info.state == MountState::Failed)
		return fail(Errc::BackendFailed, fmt::format("mount {} failed: {}", id, e->info.stateMessage));
	if (e->info.state != MountState::Ready || !e->pipeline)
		return fail(Errc::Busy, fmt::format("mount {} is {}", id, stateName(e->info.state)));
	++e->leases;
	PipelineLease l;
	l.pipeline = e->pipeline;
	l.hold = std::shared_ptr<void>(e.get(), [e](void *) { --e->leases; });
	l.name = fmt::format("mount {}", id);
	l.backendUri = e->info.backendUri;
	l.readOnly = e->info.readOnly;
	l.diverter = e->diverter;
	return l;
}

r3d::ResultMsg<void> MountManager::sync(const std::string &id)
{
	std::shared_ptr<Entry> e;
	auto usable = [&]() -> r3d::ResultMsg<void> {
		std::lock_guard lock(mutex_);
		if (!e && !(e = mounts_.find(id)))
			return fail(Errc::NotFound, fmt::format("no mount '{}'", id));
		if (e->info.kind != r3d::mount::MountKind::Managed)
			return fail(Errc::NotSupported, fmt::format("mount {} is not managed: it has nothing to sync", id));
		if (e->info.state == MountState::Attaching || e->info.state == MountState::Unmounting || !e->region)
			return fail(Errc::Busy, fmt::format("mount {} is {}", id, stateName(e->info.state)));
		return {};
	};
	if (auto ok = usable(); !ok)
		return ok;
	// Shared: an unmount waits for the push to end, then pushes what is left itself.
	std::shared_lock io(e->ioMutex);
	if (auto ok = usable(); !ok)
		return ok;
	return syncManaged(*e->region, e->pushed, "mount", id);
}

std::optional<r3d::mount::ManagedStatus> MountManager::managedStatus(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = mounts_.find(id);
		if (!e || !e->region)
			return std::nullopt;
	}
	return e->pushed.statusOf(*e->region);
}

r3d::ResultMsg<r3d::UniqueFd> MountManager::openFd(const std::string &id, uint32_t flags)
{
	if ((flags & ~kAllowedOpenFlags) != 0)
		return fail(Errc::InvalidArgument, fmt::format("flags {:#x} have bits OpenFd does not allow: {:#x}", flags,
							       flags & ~kAllowedOpenFlags));
	uint32_t access = flags & O_ACCMODE;
	if (access != O_RDONLY && access != O_WRONLY && access != O_RDWR)
		return fail(Errc::InvalidArgument, fmt::format("flags {:#x}: the access mode is not O_RDONLY, O_WRONLY "
							       "or O_RDWR",
							       flags));
	std::shared_ptr<Entry> e;
	auto usable = [&]() -> r3d::ResultMsg<void> {
		std::lock_guard lock(mutex_);
		if (!e && !(e = mounts_.find(id)))
			return fail(Errc::NotFound, fmt::format("no mount '{}'", id));
		if (e->info.state == MountState::Failed)
			return fail(Errc::Failed, fmt::format("mount {} has failed: {}", id, e->info.stateMessage));
		if (e->info.state != MountState::Ready)
			return fail(Errc::Busy, fmt::format("mount {} is {}", id, stateName(e->info.state)));
		if (e->info.readOnly && access != O_RDONLY)
			return fail(Errc::ReadOnly, fmt::format("mount {} is read-only", id));
		return {};
	};
	if (auto ok = usable(); !ok)
		return r3d::unexpectedOf(ok.error());
	std::shared_lock io(e->ioMutex);
	// Checked again: an unmount may have closed the device while we waited.
	if (auto ok = usable(); !ok)
		return r3d::unexpectedOf(ok.error());
	auto fd = e->device->openFd(static_cast<int>(flags));
	if (!fd) {
		// The caller was admitted and the mount is ready: whatever else stops the daemon
		// from opening the device is its problem, not a refusal of the caller.
		int err = fd.error().code.value();
		Errc errc = err == EROFS ? Errc::ReadOnly : err == EBUSY ? Errc::Busy : Errc::Failed;
		return rename(errc, fd.error());
	}
	return std::move(*fd);
}

std::vector<MountInfo> MountManager::list() const
{
	std::lock_guard lock(mutex_);
	std::vector<MountInfo> out;
	mounts_.forEach([&](const std::string &, const std::shared_ptr<Entry> &e) { out.push_back(e->info); });
	return out;
}

std::optional<MountInfo> MountManager::find(const std::string &id) const
{
	std::lock_guard lock(mutex_);
	auto e = mounts_.find(id);
	if (!e)
		return std::nullopt;
	return e->info;
}

std::optional<std::string> MountManager::resolve(const std::string &idOrDevice) const
{
	std::lock_guard lock(mutex_);
	if (mounts_.find(idOrDevice))
		return idOrDevice;
	std::optional<std::string> found;
	mounts_.forEach([&](const std::string &id, const std::shared_ptr<Entry> &e) {
		if (!found && !e->info.device.empty() &&
		    (e->info.device == idOrDevice || e->info.device == "/dev/" + idOrDevice))
			found = id;
	});
	return found;
}

std::optional<r3d::Counters> MountManager::counters(const std::string &id) const
{
	std::shared_ptr<r3d::mount::Mount> device;
	{
		std::lock_guard lock(mutex_);
		auto e = mounts_.find(id);
		if (!e)
			return std::nullopt;
		device = e->device;
	}
	if (!device)
		return r3d::Counters{};
	return device->counters();
}

void MountManager::checkDevices()
{
	std::vector<std::shared_ptr<Entry>> lost;
	{
		std::lock_guard lock(mutex_);
		mounts_.forEach([&](const std::string &, const std::shared_ptr<Entry> &e) {
			if (e->info.state == MountState::Ready && !e->device->serving())
				lost.push_back(e);
		});
	}
	for (const auto &e : lost) {
		r3d::log::get("mount")->error("mount {}: {} lost its connection to the server", e->info.id, e->info.device);
		setState(*e, MountState::Failed, "the kernel dropped the connection to the server; unmount to free the device",
			 MountState::Ready);
	}
}

void MountManager::unmountAll()
{
	auto log = r3d::log::get("mount");
	for (const auto &info : list()) {
		bool managed = info.kind == r3d::mount::MountKind::Managed;
		auto ok = unmount(info.id, false, {}, !managed);
		if (!ok && ok.error().code == make_error_code(Errc::Busy) && info.state != MountState::Attaching) {
			std::shared_ptr<r3d::mount::Mount> device;
			{
				std::lock_guard lock(mutex_);
				if (auto e = mounts_.find(info.id))
					device = e->device;
			}
			std::string where = device ? fmt::format("{}", fmt::join(device->holders(), ", ")) : "";
			if (where.empty())
				where = "nowhere visible here: held open exclusively, or mounted in another namespace";
			log->warn("mount {}: {} is still in use at shutdown (mounted at: {}); syncing its filesystems "
				  "and disconnecting it anyway. Unmount filesystems on r3map devices before stopping "
				  "r3mapd (mount them with _netdev so systemd does)",
				  info.id, info.device, where);
			ok = unmount(info.id, true, {}, !managed);
		}
		if (!ok)
			log->error("mount {}: left behind at shutdown: {}{}", info.id, ok.error().message,
				   managed ? "; a cache directory keeps what is dirty for the next start" : "");
	}
}

} // namespace r3mapd
