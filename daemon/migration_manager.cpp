#include "migration_manager.hpp"

#include <atomic>
#include <functional>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <r3d/backend_uri.hpp>
#include <r3d/log.hpp>

#include "backend_opener.hpp"
#include "base/host_port.hpp"
#include "config.hpp"
#include "errors.hpp"
#include "finalize_gate.hpp"
#include "hook_command.hpp"
#include "migration/leecher.hpp"
#include "migration/seeder.hpp"
#include "mount/mount.hpp"
#include "nbd/server.hpp"
#include "nbd_export.hpp"
#include "transport/client_security.hpp"

namespace r3mapd {

namespace mig = r3d::migration;

/// How long a finalize hook may take before it is killed and the handover aborted.
constexpr std::chrono::seconds kHookTimeout{ 30 };
/// How long a seeder with finalize_signal waits for AnswerFinalize: less than the leecher
/// waits for the seeder's answer (LeecherOptions::messageTimeout, 30 s).
constexpr std::chrono::seconds kAnswerTimeout{ 25 };

struct MigrationManager::Entry {
	MigrationInfo info;
	std::unique_ptr<FinalizeGate> gate; ///< a seeder with finalize_signal
	uid_t caller = static_cast<uid_t>(-1);
	std::unique_ptr<mig::Seeder> seeder;
	std::unique_ptr<mig::Leecher> leecher;
	std::unique_ptr<NbdExport> served;
	std::unique_ptr<r3d::mount::Mount> device; ///< a leecher's kernel device
	/// A seeded mount's lease, and what its diverter led to before the seed.
	PipelineLease lent;
	std::shared_ptr<r3d::ReadWriterAt> divertedFrom;
	std::function<void()> release; ///< lets another seed of the lender in
	bool cancelling = false; ///< guarded by MigrationManager::mutex_

	// Stopped while every member lives: the seeder's and leecher's callbacks use this entry.
	~Entry() { stop(); }

	/// The id once its object is announced: the callbacks signal only then.
	std::string published() const
	{
		std::lock_guard lock(publishedMutex);
		return publishedId;
	}

	void publish(const std::string &id)
	{
		std::lock_guard lock(publishedMutex);
		publishedId = id;
	}

	void stop()
	{
		// A wait for the app's answer ends first: the seeder's stop waits for its suspend step.
		if (gate)
			gate->close();
		// Apps first: nothing writes through the region once its seeder or leecher ends.
		if (served)
			served->stop();
		if (device)
			(void)device->close(true); // cancel() refused while it is held; this is shutdown
		if (seeder)
			seeder->stop();
		undivert();
		if (leecher)
			leecher->stop();
	}

	/// A seeded mount gets its backend back, unless a leecher owns the region: then its
	/// writes keep failing through the sealed front. Either way the lease ends.
	void undivert()
	{
		if (lent.diverter && divertedFrom && !(seeder && seeder->handedOver())) {
			lent.diverter->lock();
			(void)lent.diverter->replaceNext(divertedFrom);
			lent.diverter->unlock();
		}
		divertedFrom.reset();
		lent = {};
		if (release)
			std::exchange(release, nullptr)();
	}

private:
	mutable std::mutex publishedMutex;
	std::string publishedId;
};

namespace {

r3d::ResultMsg<std::unique_ptr<NbdExport>> serveNbd(const Config &config, r3d::Runtime &runtime,
						    std::shared_ptr<r3d::ReadWriterAt> region, const std::string &address)
{
	r3d::nbd::ServerOptions options;
	options.maxPayload = static_cast<uint32_t>(config.maxRequestSize);
	options.runtime = &runtime;
	auto server = std::make_unique<r3d::nbd::Server>(options);
	server->addExport({ "", "r3mapd migration", std::move(region), false, nullptr });
	auto served = NbdExport::listen(std::move(server), address);
	if (!served)
		return fail(classify(served.error().code), fmt::format("export_listen '{}': {}", address, served.error().message));
	return served;
}

std::string exportAddress(const NbdExport *served, const std::string &asked)
{
	if (!served)
		return "";
	return asked.starts_with("unix:") ? "unix:" + served->address() : served->address();
}

} // namespace

MigrationManager::MigrationManager(const Config &config, const AccessPolicy &access, MigrationObserver &observer,
				   r3d::Runtime &runtime, AttachFn attach)
	: config_(config), access_(access), observer_(observer), runtime_(runtime), attach_(std::move(attach))
{
}

MigrationManager::~MigrationManager()
{
	entries_.forEach([](const std::string &, const std::shared_ptr<Entry> &e) { e->stop(); });
}

r3d::ResultMsg<MigrationInfo> MigrationManager::add(std::shared_ptr<Entry> e)
{
	MigrationInfo snapshot;
	{
		std::lock_guard lock(mutex_);
		e->info.id = entries_.add(e);
		snapshot = e->info;
	}
	observer_.migrationAdded(snapshot);
	e->publish(snapshot.id);
	r3d::log::get("migration")->info("migration {}: {} {} ({}), r3 on '{}', NBD on '{}'", snapshot.id, snapshot.role,
					 snapshot.source, snapshot.migrationId, snapshot.listen, snapshot.exportAddress);
	return snapshot;
}

mig::ProgressCallback MigrationManager::phaseWatch(Entry &e)
{
	auto last = std::make_shared<std::atomic<int>>(-1);
	return [this, self = &e, last](const mig::MigrationProgress &p) {
		int phase = static_cast<int>(p.phase);
		if (last->exchange(phase) == phase)
			return;
		if (auto id = self->published(); !id.empty())
			observer_.migrationPhaseChanged(id, mig::phaseName(p.phase));
	};
}

r3d::ResultMsg<MigrationInfo> MigrationManager::seed(const SeedRequest &request)
{
	auto e = std::make_shared<Entry>();
	e->caller = request.callerUid;
	mig::SeederOptions options;
	options.migrationId = request.migrationId;
	options.onProgress = phaseWatch(*e);
	if (!request.onFinalize.empty() && request.finalizeSignal)
		return fail(Errc::InvalidArgument, "options 'on_finalize' and 'finalize_signal' exclude each other: choose one");
	if (!request.onFinalize.empty()) {
		auto hook = HookCommand::create(request.onFinalize, request.callerUid);
		if (!hook)
			return fail(hook.error().code.value() == EPERM ? Errc::NotPermitted : Errc::InvalidArgument,
				    fmt::format("option 'on_finalize': {}", hook.error().message));
		// The app's suspend: the handover goes on only once it exited 0 (bounded wait).
		options.onSuspend = [h = std::move(*hook)]() { return h.run(kHookTimeout); };
	} else if (request.finalizeSignal) {
		// The app's suspend over D-Bus: FinalizeRequested out, AnswerFinalize back. The
		// callbacks run while the entry (which owns the seeder) lives.
		e->gate = std::make_unique<FinalizeGate>(kAnswerTimeout);
		Entry *self = e.get();
		options.onSuspend = [this, self]() -> r3d::ResultMsg<void> {
			auto id = self->published();
			auto answered = self->gate->await([&] {
				if (!id.empty())
					observer_.migrationFinalizeRequested(id);
			});
			if (!answered && !id.empty())
				observer_.migrationFinalizeAborted(id, answered.error().message);
			return answered;
		};
		options.onResume = [this, self] {
			if (auto id = self->published(); !id.empty())
				observer_.migrationFinalizeAborted(id, "the handover was aborted after the app paused");
		};
	}
	if (auto secured = request.security.apply(request.callerUid, request.listen, "a seeder", options.server); !secured)
		return r3d::unexpectedOf(secured.error());
	std::shared_ptr<r3d::ReadWriterAt> source;
	auto colon = request.backendUri.find(':');
	auto lender = colon == std::string::npos ? lenders_.end() : lenders_.find(request.backendUri.substr(0, colon));
	if (lender != lenders_.end()) {
		auto lent = lender->second(request.backendUri.substr(colon + 1));
		if (!lent)
			return r3d::unexpectedOf(lent.error());
		if (!lent->diverter)
			return fail(Errc::NotSupported, fmt::format("{} cannot be seeded: seed its backend URI instead", lent->name));
		{
			std::lock_guard lock(seedingMutex_);
			if (!seeding_.insert(lent->diverter.get()).second)
				return fail(Errc::Busy, fmt::format("{} is already being seeded", lent->name));
		}
		auto *diverter = lent->diverter.get();
		e->release = [this, diverter] {
			std::lock_guard lock(seedingMutex_);
			seeding_.erase(diverter);
		};
		e->lent = std::move(*lent);
		source = e->lent.diverter->current();
	} else {
		auto backend = openAllowedBackend(config_, request.backendUri, std::nullopt, request.callerUid, &runtime_);
		if (!backend)
			return r3d::unexpectedOf(backend.error());
		source = std::move(*backend);
	}
	auto seeder = mig::Seeder::create(runtime_, source, options);
	if (!seeder)
		return fail(Errc::BackendFailed, seeder.error().message);
	e->seeder = std::move(*seeder);
	if (e->lent.diverter) {
		// The mount's I/O goes through the tracking front from here on; the lock waits
		// out what is in flight, so no write slips past the tracker.
		e->lent.diverter->lock();
		auto replaced = e->lent.diverter->replaceNext(e->seeder->front());
		e->lent.diverter->unlock();
		if (!replaced) {
			e->stop();
			return fail(Errc::Failed, fmt::format("{}: the seeder's front does not fit the mount", e->lent.name));
		}
		e->divertedFrom = std::move(source);
		r3d::log::get("migration")->info("{}: its I/O is tracked by the seeder from now on", e->lent.name);
	}
	if (!request.exportListen.empty()) {
		auto served = serveNbd(config_, runtime_, e->seeder->front(), request.exportListen);
		if (!served) {
			e->stop();
			return r3d::unexpectedOf(served.error());
		}
		e->served = std::move(*served);
	}
	auto address = e->seeder->listen(request.listen);
	if (!address) {
		e->stop();
		Errc errc = classify(address.error().code);
		return fail(errc == Errc::AddressInUse || errc == Errc::InvalidArgument ? errc : Errc::Failed,
			    fmt::format("listen '{}': {}", request.listen, address.error().message));
	}
	e->info.role = "seeder";
	e->info.source = request.backendUri;
	e->info.listen = *address;
	e->info.migrationId = e->seeder->migrationId();
	e->info.exportAddress = exportAddress(e->served.get(), request.exportListen);
	return add(std::move(e));
}

r3d::ResultMsg<MigrationInfo> MigrationManager::pull(const PullRequest &request)
{
	auto uri = r3d::BackendUri::parse(request.source);
	if (!uri || uri->scheme != "r3")
		return fail(Errc::InvalidArgument, fmt::format("source '{}': expected r3://HOST:PORT/ID", request.source));
	if (auto ok = uri->onlyParams(r3d::transport::ClientSecurity::params()); !ok)
		return fail(Errc::InvalidArgument, ok.error().message);
	if (r3d::transport::ClientSecurity::namesFiles(*uri) && request.callerUid != 0)
		return fail(Errc::NotPermitted,
			    fmt::format("uid {} may not use tls-ca, tls-cert, tls-key or token-file: r3mapd runs as root "
					"and would read those files for it",
					request.callerUid));
	auto security = r3d::transport::ClientSecurity::of(*uri);
	if (!security)
		return fail(Errc::InvalidArgument, security.error().message);
	auto hostPort = r3d::parseHostPort(uri->authority, "7700");
	if (!hostPort)
		return fail(Errc::InvalidArgument, fmt::format("source '{}': {}", request.source, hostPort.error().message));
	std::string migrationId = uri->path.starts_with("/") ? uri->path.substr(1) : uri->path;
	if (migrationId.empty())
		return fail(Errc::InvalidArgument, fmt::format("source '{}': no migration id after the address", request.source));
	auto e = std::make_shared<Entry>();
	e->caller = request.callerUid;
	mig::LeecherOptions options;
	options.onProgress = phaseWatch(*e);
	options.host = hostPort->host;
	options.port = hostPort->port;
	options.migrationId = migrationId;
	options.tls = std::move(security->tls);
	options.token = std::move(security->token);
	options.convergence.downtimeBudget = request.downtime;
	options.convergence.maxRounds = request.maxRounds;
	options.pullRate = request.rate;
	options.autoFinalize = request.autoFinalize;
	auto leecher = mig::Leecher::connect(runtime_, options);
	if (!leecher)
		return fail(Errc::BackendFailed, fmt::format("{}: {}", request.source, leecher.error().message));
	e->leecher = std::move(*leecher);
	if (request.exportListen.empty()) {
		AttachParams params;
		params.backend = e->leecher->region();
		params.chunkSize = 4096; // the region takes any offset: no stage in front
		params.name = "migration " + migrationId;
		params.maxRequest = static_cast<uint32_t>(config_.maxRequestSize);
		auto device = attach_(std::move(params));
		if (!device) {
			e->stop();
			return r3d::unexpectedOf(device.error());
		}
		e->device = std::move(*device);
		e->info.device = e->device->path();
	} else {
		auto served = serveNbd(config_, runtime_, e->leecher->region(), request.exportListen);
		if (!served) {
			e->stop();
			return r3d::unexpectedOf(served.error());
		}
		e->served = std::move(*served);
	}
	e->info.role = "leecher";
	e->info.source = request.source;
	e->info.migrationId = migrationId;
	e->info.exportAddress = exportAddress(e->served.get(), request.exportListen);
	return add(std::move(e));
}

std::shared_ptr<MigrationManager::Entry> MigrationManager::live(const std::string &id) const
{
	std::lock_guard lock(mutex_);
	auto e = entries_.find(id);
	return e && !e->cancelling ? e : nullptr;
}

r3d::ResultMsg<void> MigrationManager::finalize(const std::string &id)
{
	auto e = live(id);
	if (!e)
		return fail(Errc::NotFound, fmt::format("no migration '{}'", id));
	if (!e->leecher)
		return fail(Errc::NotSupported,
			    fmt::format("migration {} is a seeder: its leecher finalizes (Finalize on the pulling side)", id));
	auto phase = e->leecher->phase();
	if (phase == mig::Phase::Failed)
		return fail(Errc::Failed, fmt::format("migration {} failed: {}", id, e->leecher->progress().failure));
	e->leecher->finalize();
	return {};
}

r3d::ResultMsg<void> MigrationManager::answerFinalize(const std::string &id, bool proceed, std::string reason,
						     uid_t callerUid)
{
	auto e = live(id);
	if (!e)
		return fail(Errc::NotFound, fmt::format("no migration '{}'", id));
	if (!e->seeder)
		return fail(Errc::NotSupported, fmt::format("migration {} is a leecher: the app answers on its seeder", id));
	if (!e->gate)
		return fail(Errc::NotSupported,
			    fmt::format("migration {} was not seeded with finalize_signal: nothing awaits an answer", id));
	if (callerUid != 0 && callerUid != e->caller)
		return fail(Errc::NotPermitted,
			    fmt::format("uid {} may not answer for migration {}: only its seeder's caller or root", callerUid, id));
	if (auto ok = e->gate->answer(proceed, std::move(reason)); !ok)
		return fail(Errc::InvalidArgument, fmt::format("migration {}: {}", id, ok.error().message));
	r3d::log::get("migration")->info("migration {}: the app answered FinalizeRequested: {}", id,
					 proceed ? "proceed" : "refused");
	return {};
}

r3d::ResultMsg<void> MigrationManager::cancel(const std::string &id)
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = entries_.find(id);
		if (!e)
			return fail(Errc::NotFound, fmt::format("no migration '{}'", id));
		if (e->cancelling)
			return fail(Errc::Busy, fmt::format("migration {} is already stopping", id));
	}
	// A device still held stays, with the migration: nothing under a mounted filesystem goes.
	if (e->device) {
		if (auto holders = e->device->holders(); !holders.empty())
			return fail(Errc::Busy, fmt::format("migration {}: {} is in use (mounted at: {}): unmount it first", id,
							    e->info.device, fmt::join(holders, ", ")));
	}
	{
		std::lock_guard lock(mutex_);
		if (e->cancelling)
			return fail(Errc::Busy, fmt::format("migration {} is already stopping", id));
		e->cancelling = true;
	}
	e->stop();
	{
		std::lock_guard lock(mutex_);
		entries_.erase(id);
	}
	observer_.migrationRemoved(id);
	r3d::log::get("migration")->info("migration {}: stopped", id);
	return {};
}

std::optional<mig::MigrationProgress> MigrationManager::progress(const std::string &id) const
{
	std::shared_ptr<Entry> e;
	{
		std::lock_guard lock(mutex_);
		e = entries_.find(id);
	}
	if (!e)
		return std::nullopt;
	return e->seeder ? e->seeder->progress() : e->leecher->progress();
}

std::vector<MigrationInfo> MigrationManager::list() const
{
	std::vector<MigrationInfo> out;
	std::lock_guard lock(mutex_);
	entries_.forEach([&](const std::string &, const std::shared_ptr<Entry> &e) { out.push_back(e->info); });
	return out;
}

void MigrationManager::stopAll()
{
	for (const auto &info : list())
		(void)cancel(info.id);
}

} // namespace r3mapd
