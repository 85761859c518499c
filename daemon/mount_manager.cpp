#include "mount_manager.hpp"

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
#include "state_store.hpp"
#include "stages/pipeline.hpp"

namespace r3mapd {

struct MountManager::Entry {
	MountInfo info; ///< guarded by MountManager::mutex_
	/// Set once when attached; shared so a statistics read never waits for a flush.
	std::shared_ptr<r3d::mount::Mount> device;
	/// openFd() holds it shared, unmount() exclusively while the device closes.
	std::shared_mutex ioMutex;
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
	nlohmann::json spec{ { "kind", "direct" },
			     { "backend", request.backendUri },
			     { "chunk_size", info.chunkSize },
			     { "read_only", request.readOnly },
			     { "caller_uid", request.callerUid },
			     { "device", info.device } };
	if (request.size)
		spec["size"] = *request.size;
	return spec;
}

} // namespace

MountManager::MountManager(const Config &config, AttachFn attach, MountObserver &observer, StateStore &state,
			   r3d::Runtime *runtime)
	: config_(config), attach_(std::move(attach)), observer_(observer), state_(state), runtime_(runtime)
{
	mounts_.reserveBelow(state_.nextId(kKind));
}

void MountManager::restore()
{
	auto log = r3d::log::get("mount");
	std::vector<std::string> bad;
	for (const auto &[id, spec] : state_.load(kKind, &bad)) {
		log->warn("mount {} of the previous run ({} on {}) ended with it: direct mounts are not restored",
			  id, spec.value("backend", "?"), spec.value("device", "no device"));
		if (auto ok = state_.remove(kKind, id); !ok)
			log->warn("{}", ok.error().message);
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
	auto log = r3d::log::get("mount");
	uint64_t chunk = request.chunkSize.value_or(config_.defaultChunkSize);
	if (auto ok = checkChunkSize(chunk); !ok)
		return rename(Errc::InvalidArgument, ok.error());
	auto backend = openAllowedBackend(config_, request.backendUri, request.size, request.callerUid, runtime_);
	if (!backend)
		return r3d::unexpectedOf(backend.error());
	// What the backend is really read and written at: a chunk store keeps its own.
	auto resolved = r3d::stages::resolveChunk(chunk, (*backend)->preferredChunk());
	if (!resolved)
		return rename(Errc::InvalidArgument, resolved.error());
	chunk = *resolved;

	auto e = std::make_shared<Entry>();
	MountInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		e->info = MountInfo{ "", "", request.backendUri, (*backend)->size(), chunk, request.readOnly,
				     MountState::Attaching, "" };
		e->info.id = mounts_.add(e);
		snapshot = e->info;
	}
	// The id is taken before anything can go wrong, so no crash makes it come back.
	if (auto ok = state_.setNextId(kKind, std::stoull(snapshot.id) + 1); !ok)
		log->warn("mount {}: {}", snapshot.id, ok.error().message);
	const std::string id = snapshot.id;
	observer_.mountAdded(snapshot);
	log->info("mount {}: attaching {} ({}, chunk {}{})", id, request.backendUri, r3d::formatSize(snapshot.size),
		  r3d::formatSize(chunk), request.readOnly ? ", read-only" : "");

	AttachParams params;
	params.backend = std::move(*backend);
	params.chunkSize = chunk;
	params.readOnly = request.readOnly;
	params.name = request.backendUri;
	auto device = attach_(std::move(params));
	if (!device) {
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
		e->info.device = e->device->path();
		e->info.state = MountState::Ready;
		snapshot = e->info;
	}
	if (auto ok = state_.save(kKind, id, specOf(request, snapshot)); !ok)
		log->warn("mount {}: not journaled: {}", id, ok.error().message);
	observer_.mountChanged(snapshot);
	log->info("mount {}: {} ready", id, snapshot.device);
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

r3d::ResultMsg<void> MountManager::unmount(const std::string &id)
{
	return unmount(id, false);
}

r3d::ResultMsg<void> MountManager::unmount(const std::string &id, bool force)
{
	std::shared_ptr<Entry> e;
	bool failed = false;
	{
		std::lock_guard lock(mutex_);
		e = mounts_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no mount '{}'", id));
		if (e->info.state == MountState::Attaching || e->info.state == MountState::Unmounting)
			return fail(Errc::Busy, fmt::format("mount {} is {}", id, stateName(e->info.state)));
		failed = e->info.state == MountState::Failed;
	}
	MountState before = failed ? MountState::Failed : MountState::Ready;
	setState(*e, MountState::Unmounting, "unmount requested");
	r3d::ResultMsg<void> closed;
	{
		std::unique_lock io(e->ioMutex);
		closed = e->device->close(force);
	}
	if (!closed) {
		// EBUSY: still mounted or opened exclusively; the device was left connected.
		bool held = closed.error().code == std::error_code(EBUSY, std::system_category());
		closed = rename(held ? Errc::Busy : Errc::BackendFailed, closed.error());
	}
	if (!closed && force) {
		// Disconnected all the same, after its filesystems were synced; at most the
		// mounted filesystem still holds the device until it is unmounted.
		r3d::log::get("mount")->warn("mount {}: forced: {}", id, closed.error().message);
		closed = {};
	}
	if (!closed && closed.error().code == make_error_code(Errc::Busy)) {
		// Still mounted or held open exclusively: the device stays connected and served,
		// nothing was lost, and Unmount can be retried once it is released.
		setState(*e, before, closed.error().message);
		return fail(Errc::Busy, closed.error().message);
	}
	if (!closed && failed) {
		// The device had already lost its server: nothing more can reach the backend, and
		// what the server acknowledged is there. Clean up rather than fail again.
		r3d::log::get("mount")->warn("mount {}: cleaning up after the failure: {}", id, closed.error().message);
		closed = {};
	}
	if (!closed) {
		// Keep it: the data may not be in the backend yet, and Unmount can be retried.
		auto message = fmt::format("unmount failed: {}", closed.error().message);
		r3d::log::get("mount")->error("mount {}: {}", id, message);
		setState(*e, MountState::Failed, message);
		return fail(classify(closed.error().code), message);
	}
	{
		std::lock_guard lock(mutex_);
		mounts_.erase(id);
	}
	if (auto ok = state_.remove(kKind, id); !ok)
		r3d::log::get("mount")->warn("mount {}: {}", id, ok.error().message);
	observer_.mountRemoved(id);
	r3d::log::get("mount")->info("mount {}: unmounted", id);
	return {};
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
		auto ok = unmount(info.id, false);
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
			ok = unmount(info.id, true);
		}
		if (!ok)
			log->error("mount {}: left behind at shutdown: {}", info.id, ok.error().message);
	}
}

} // namespace r3mapd
