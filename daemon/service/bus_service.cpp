#include "service/bus_service.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>

#include <r3d/log.hpp>

#include "errors.hpp"
#include "service/export_object.hpp"
#include "service/manager_object.hpp"
#include "service/migration_object.hpp"
#include "service/mount_object.hpp"
#include "service/reply_scope.hpp"
#include "service/region_object.hpp"
#include "service/service_state.hpp"
#include "service/sync_object.hpp"

namespace r3mapd::service {

// Lock order: mutex is never held while calling into sdbus-c++, because the bus thread
// holds sdbus-c++'s lock while it runs our getters and handlers.
struct BusService::Impl {
	std::optional<ServiceState> state;
	std::unique_ptr<sdbus::IConnection> connection;
	std::unique_ptr<ManagerObject> manager;
	std::unique_ptr<sdbus::IProxy> busDaemon; ///< org.freedesktop.DBus, for probe()
	std::thread busThread;
	std::atomic<bool> leaving{ false };
	bool nameOwned = false;

	std::mutex mutex;
	std::map<std::string, std::shared_ptr<MountObject>> mounts;
	std::map<std::string, std::shared_ptr<ExportObject>> exports;
	std::map<std::string, std::shared_ptr<RegionObject>> regions;
	std::map<std::string, std::shared_ptr<MigrationObject>> migrations;
	std::map<std::string, std::shared_ptr<SyncObject>> syncs;
	bool publishing = false; ///< objects are created only while the service runs
};

namespace {

// Observers must not throw into the managers: a broken bus costs the object, not the mount.
// The object is created and destroyed without our lock (see Impl).
template <class Object, class Info>
void publish(BusService::Impl &d, std::map<std::string, std::shared_ptr<Object>> &objects, const Info &info)
{
	{
		std::lock_guard lock(d.mutex);
		if (!d.publishing)
			return;
	}
	std::shared_ptr<Object> object;
	try {
		object = std::make_shared<Object>(*d.connection, *d.state, info);
	} catch (const std::exception &e) {
		r3d::log::get("dbus")->error("cannot publish {}: {}", info.id, e.what());
		return;
	}
	std::lock_guard lock(d.mutex);
	objects[info.id] = std::move(object);
}

template <class Object>
void unpublish(BusService::Impl &d, std::map<std::string, std::shared_ptr<Object>> &objects, const std::string &id)
{
	std::shared_ptr<Object> object;
	{
		std::lock_guard lock(d.mutex);
		auto it = objects.find(id);
		if (it == objects.end())
			return;
		object = std::move(it->second);
		objects.erase(it);
	}
	// Removed from the bus when the last reference goes: after the reply of a call that
	// removed its own object.
	ReplyScope::keep(std::move(object));
}

} // namespace

BusService::BusService() : impl_(std::make_unique<Impl>()) {}

BusService::~BusService()
{
	stop();
}

r3d::ResultMsg<void> BusService::start(ServiceContext context, std::function<void(const std::string &)> onBusLost)
{
	auto log = r3d::log::get("dbus");
	auto &d = *impl_;
	d.state.emplace(std::move(context));
	try {
		d.connection = sdbus::createSystemBusConnection();
	} catch (const sdbus::Error &e) {
		return fail(Errc::Failed, fmt::format("cannot connect to the system bus: {}", e.getMessage()));
	}
	try {
		// Objects first, then the name: whoever sees the name can call at once.
		d.manager = std::make_unique<ManagerObject>(*d.connection, *d.state);
		{
			std::lock_guard lock(d.mutex);
			d.publishing = true;
		}
		d.connection->requestName(kBusName);
		d.nameOwned = true;
	} catch (const sdbus::Error &e) {
		{
			std::lock_guard lock(d.mutex);
			d.publishing = false;
		}
		d.manager.reset();
		d.connection.reset();
		return fail(Errc::Failed, fmt::format("cannot own {} on the system bus: {}", kBusName, e.getMessage()));
	}
	d.busDaemon = sdbus::createProxy(*d.connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
	d.busThread = std::thread([&d, onBusLost = std::move(onBusLost)] {
		try {
			d.connection->enterEventLoop();
		} catch (const std::exception &e) {
			if (!d.leaving.load())
				onBusLost(e.what());
		}
	});
	log->info("serving {} on the system bus as {}", kBusName, d.connection->getUniqueName());
	return {};
}

void BusService::stopAccepting()
{
	if (impl_->state)
		impl_->state->accepting = false;
}

void BusService::stop()
{
	auto &d = *impl_;
	if (!d.connection)
		return;
	d.leaving = true;
	stopAccepting();
	if (d.nameOwned) {
		try {
			d.connection->releaseName(kBusName);
		} catch (const sdbus::Error &e) {
			r3d::log::get("dbus")->warn("releasing {}: {}", kBusName, e.getMessage());
		}
		d.nameOwned = false;
	}
	try {
		d.connection->leaveEventLoop();
	} catch (const sdbus::Error &e) {
		r3d::log::get("dbus")->warn("stopping the bus loop: {}", e.getMessage());
	}
	if (d.busThread.joinable())
		d.busThread.join();
	std::map<std::string, std::shared_ptr<MountObject>> mounts;
	std::map<std::string, std::shared_ptr<ExportObject>> exports;
	std::map<std::string, std::shared_ptr<RegionObject>> regions;
	std::map<std::string, std::shared_ptr<MigrationObject>> migrations;
	std::map<std::string, std::shared_ptr<SyncObject>> syncs;
	{
		std::lock_guard lock(d.mutex);
		d.publishing = false;
		mounts.swap(d.mounts);
		exports.swap(d.exports);
		regions.swap(d.regions);
		migrations.swap(d.migrations);
		syncs.swap(d.syncs);
	}
	mounts.clear();
	exports.clear();
	regions.clear();
	migrations.clear();
	syncs.clear();
	d.manager.reset();
	d.busDaemon.reset();
	d.connection.reset();
}

void BusService::probe(std::function<void()> answered)
{
	if (!impl_->busDaemon || impl_->leaving.load())
		return;
	try {
		impl_->busDaemon->callMethodAsync("GetId")
			.onInterface("org.freedesktop.DBus")
			.uponReplyInvoke([answered = std::move(answered)](const sdbus::Error *, std::string) {
				// An error reply is an answer too: the bus thread and dbus-daemon work.
				answered();
			});
	} catch (const sdbus::Error &e) {
		r3d::log::get("dbus")->warn("bus check: {}", e.getMessage());
	}
}

void BusService::refreshManaged()
{
	std::vector<std::shared_ptr<MountObject>> mounts;
	std::vector<std::shared_ptr<ExportObject>> exports;
	{
		std::lock_guard lock(impl_->mutex);
		for (const auto &[id, object] : impl_->mounts)
			mounts.push_back(object);
		for (const auto &[id, object] : impl_->exports)
			exports.push_back(object);
	}
	// Without our lock, as every signal (see Impl).
	try {
		for (const auto &m : mounts)
			m->refreshManaged();
		for (const auto &e : exports)
			e->refreshManaged();
	} catch (const std::exception &e) {
		r3d::log::get("dbus")->warn("cannot signal managed progress: {}", e.what());
	}
}

namespace {

// A signal of one published object, sent without the service's lock (as every signal).
template <class Object, class Emit>
void signalOne(BusService::Impl &d, std::map<std::string, std::shared_ptr<Object>> &objects, const std::string &id,
	       const char *what, Emit emit)
{
	std::shared_ptr<Object> object;
	{
		std::lock_guard lock(d.mutex);
		auto it = objects.find(id);
		if (it == objects.end())
			return;
		object = it->second;
	}
	try {
		emit(*object);
	} catch (const std::exception &e) {
		r3d::log::get("dbus")->warn("{} {}: cannot signal: {}", what, id, e.what());
	}
}

} // namespace

void BusService::mountAdded(const MountInfo &info)
{
	publish<MountObject>(*impl_, impl_->mounts, info);
}

void BusService::mountChanged(const MountInfo &info)
{
	signalOne(*impl_, impl_->mounts, info.id, "mount", [&](MountObject &m) { m.update(info); });
}

void BusService::mountRemoved(const std::string &id)
{
	unpublish(*impl_, impl_->mounts, id);
}

void BusService::exportAdded(const ExportInfo &info)
{
	publish<ExportObject>(*impl_, impl_->exports, info);
}

void BusService::exportRemoved(const std::string &id)
{
	unpublish(*impl_, impl_->exports, id);
}

void BusService::regionAdded(const RegionInfo &info)
{
	publish<RegionObject>(*impl_, impl_->regions, info);
}

void BusService::regionRemoved(const std::string &id)
{
	unpublish(*impl_, impl_->regions, id);
}

void BusService::migrationAdded(const MigrationInfo &info)
{
	publish<MigrationObject>(*impl_, impl_->migrations, info);
}

void BusService::migrationRemoved(const std::string &id)
{
	unpublish(*impl_, impl_->migrations, id);
}

void BusService::migrationPhaseChanged(const std::string &id, const std::string &phase)
{
	signalOne(*impl_, impl_->migrations, id, "migration", [&](MigrationObject &m) { m.phaseChanged(phase); });
}

void BusService::migrationFinalizeRequested(const std::string &id)
{
	signalOne(*impl_, impl_->migrations, id, "migration", [](MigrationObject &m) { m.finalizeRequested(); });
}

void BusService::migrationFinalizeAborted(const std::string &id, const std::string &reason)
{
	signalOne(*impl_, impl_->migrations, id, "migration", [&](MigrationObject &m) { m.finalizeAborted(reason); });
}

void BusService::syncAdded(const SyncInfo &info)
{
	publish<SyncObject>(*impl_, impl_->syncs, info);
}

void BusService::syncRemoved(const std::string &id)
{
	unpublish(*impl_, impl_->syncs, id);
}

} // namespace r3mapd::service
