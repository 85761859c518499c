#include "migration/seeder_core.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "migration/seeder_session.hpp"
#include "migration/tracking_dirty_source.hpp"

namespace r3d::migration {
namespace {

auto logger()
{
	return r3d::log::get("migration");
}

} // namespace

SeederCore::SeederCore(std::shared_ptr<ReadWriterAt> source, SeederCoreOptions options)
	: source_(std::move(source)), options_(std::move(options)),
	  handover_(options_.migrationId, 1, options_.handover)
{
	// front → lock → fence → tracker → source: what the lock held back meets the fence
	// after a handover, and every write that landed was tracked.
	tracker_ = std::make_shared<stages::TrackingReadWriterAt>(source_, options_.chunkSize);
	fence_ = std::make_shared<WriteFence>(tracker_);
	lock_ = std::make_shared<stages::LockableReadWriterAt>(fence_);
	front_ = lock_;
	fanout_ = DirtyFanout::create(std::make_shared<TrackingDirtySource>(tracker_));
}

SeederCore::~SeederCore()
{
	stop();
}

ResultMsg<void> SeederCore::start()
{
	// Tracking from this instant: every write from now on is in some leecher's round.
	tracker_->track();
	watchdog_ = std::thread([this] { watchdog(); });
	return {};
}

void SeederCore::stop()
{
	{
		std::lock_guard lock(mutex_);
		if (stopping_)
			return;
		stopping_ = true;
		if (locked_ && !handover_.handedOver()) {
			lock_->unlock();
			locked_ = false;
		}
	}
	changed_.notify_all();
	if (watchdog_.joinable())
		watchdog_.join();
}

SeederPeer *SeederCore::peer(const std::string &leecherId)
{
	auto it = peers_.find(leecherId);
	return it == peers_.end() ? nullptr : it->second.get();
}

MigrationHelloReply SeederCore::admit(const MigrationHello &hello, SeederSession *session)
{
	std::unique_lock lock(mutex_);
	MigrationHelloReply refused;
	refused.migrationId = options_.migrationId;
	if (stopping_) {
		refused.error = ESHUTDOWN;
		refused.message = "the seeder is stopping";
		return refused;
	}
	SeederPeer *p = peer(hello.leecherId);
	if (p && hello.epoch == 0) {
		// A leecher id reused by a new leecher would inherit rounds it never had.
		refused.error = EEXIST;
		refused.message = fmt::format("leecher '{}' is already part of this migration; a resuming leecher "
					      "sends the epoch it knew",
					      hello.leecherId);
		return refused;
	}
	if (!p && hello.epoch != 0) {
		refused.error = ENOENT;
		refused.message = fmt::format("leecher '{}' is not part of this migration (the seeder restarted?)",
					      hello.leecherId);
		return refused;
	}
	uint64_t round = p ? p->ledger.lastSent() : 0;
	bool wasFinalizing = handover_.finalizing() == hello.leecherId;
	auto reply = handover_.admit(hello, region(), round);
	if (!reply) {
		refused.error = reply.error().code.value();
		refused.message = reply.error().message;
		return refused;
	}
	if (wasFinalizing) // admit() aborted it: the old connection cannot commit any more
		abortLocked(hello.leecherId, "the leecher reconnected during its handover");
	if (!p) {
		auto view = fanout_->addView();
		if (auto started = view->start(); !started) {
			refused.error = started.error().value();
			refused.message = "cannot start a dirty view: " + started.error().message();
			return refused;
		}
		p = peers_.emplace(hello.leecherId, std::make_unique<SeederPeer>(std::move(view))).first->second.get();
		logger()->info("migration {}: leecher '{}' joined ({} now)", options_.migrationId, hello.leecherId,
			       peers_.size());
	} else {
		if (p->state.phase() == Phase::Resuming) {
			Phase to = p->state.resumeFrom();
			if (to == Phase::Finalizing)
				to = reply->handedOver ? Phase::PostCopy : p->beforeFinalize;
			(void)p->state.resume(to);
		}
		logger()->info("migration {}: leecher '{}' is back (round {})", options_.migrationId, hello.leecherId,
			       round);
	}
	if (p->session && p->session != session)
		p->session->kill(); // an older connection of the same leecher
	p->session = session;
	lock.unlock();
	report();
	return *reply;
}

void SeederCore::left(const std::string &leecherId, SeederSession *session)
{
	{
		std::lock_guard lock(mutex_);
		SeederPeer *p = peer(leecherId);
		if (!p || p->session != session)
			return;
		p->session = nullptr;
		if (handover_.finalizing() == leecherId)
			abortLocked(leecherId, "the leecher's link was lost before the commit");
		if (!p->state.terminal())
			(void)p->state.linkLost();
	}
	report();
}

ResultMsg<DirtyRound> SeederCore::nextRound(const std::string &leecherId, uint64_t applied)
{
	std::unique_lock lock(mutex_);
	SeederPeer *p = peer(leecherId);
	if (!p)
		return fail(ENOENT, "no such leecher");
	if (applied > p->ledger.lastConfirmed())
		if (auto ok = p->ledger.confirmed(applied); !ok)
			return unexpectedOf(ok.error());
	auto round = p->view->take();
	if (!round)
		return fail(round.error(), "cannot take the dirty set");
	if (auto ok = p->ledger.sent(*round); !ok) {
		(void)p->view->requeue(round->chunks);
		return unexpectedOf(ok.error());
	}
	if (p->state.phase() == Phase::Tracking)
		(void)p->state.firstPassDone();
	else if (p->state.phase() == Phase::PreCopy)
		(void)p->state.roundDone();
	lock.unlock();
	report();
	return std::move(*round);
}

ResultMsg<void> SeederCore::resume(const std::string &leecherId, uint64_t round)
{
	std::lock_guard lock(mutex_);
	SeederPeer *p = peer(leecherId);
	if (!p)
		return fail(ENOENT, "no such leecher");
	auto lost = p->ledger.resume(round);
	if (!lost)
		return unexpectedOf(lost.error());
	if (!lost->empty()) {
		logger()->info("migration {}: leecher '{}' resumes at round {}; {} chunks of later lists go again",
			       options_.migrationId, leecherId, round, lost->size());
		if (auto ok = p->view->requeue(*lost); !ok)
			return fail(ok.error(), "cannot requeue the lost lists");
	}
	return {};
}

ResultMsg<uint64_t> SeederCore::beginFinalize(const FinalizeRequest &request)
{
	std::unique_lock lock(mutex_);
	SeederPeer *p = peer(request.leecherId);
	if (!p)
		return fail(ENOENT, "no such leecher");
	auto proposed = handover_.request(request);
	if (!proposed) {
		if (proposed.error().code.value() == EPERM && !p->state.terminal() &&
		    p->state.phase() != Phase::PostCopy) {
			// Another leecher owns: this one ends as a read-only copy of the final state.
			if (p->state.beginFinalize())
				(void)p->state.commit(false);
		}
		return unexpectedOf(proposed.error());
	}
	p->beforeFinalize = p->state.phase();
	if (auto ok = p->state.beginFinalize(); !ok) {
		(void)handover_.abort(request.leecherId, ok.error().message);
		return unexpectedOf(ok.error());
	}
	logger()->info("migration {}: leecher '{}' asks for ownership; proposing epoch {}", options_.migrationId,
		       request.leecherId, *proposed);
	lock.unlock();
	report();
	return proposed;
}

ResultMsg<DirtyRound> SeederCore::lockForHandover(const std::string &leecherId, uint64_t proposed)
{
	auto still = [&] { return handover_.finalizing() == leecherId && handover_.proposed() == proposed; };
	if (options_.onSuspend) {
		auto suspended = options_.onSuspend();
		std::lock_guard lock(mutex_);
		if (!suspended) {
			abortLocked(leecherId, "the suspend hook failed: " + suspended.error().message);
			return fail(suspended.error().code, "the suspend hook failed: " + suspended.error().message);
		}
		if (!still()) {
			if (options_.onResume)
				options_.onResume();
			return fail(ECANCELED, "the handover was aborted while the writers were suspended");
		}
		suspended_ = true;
	}
	// Flushed once before the lock, so the flush inside the downtime is only what the last
	// moments wrote. Then the lock waits for the writes inside the pipeline to return:
	// after it the source is quiescent.
	(void)source_->sync();
	lock_->lock();
	auto at = std::chrono::steady_clock::now();
	auto flushed = source_->sync();
	std::lock_guard lock(mutex_);
	if (!still()) {
		if (!handover_.handedOver())
			lock_->unlock();
		return fail(ECANCELED, "the handover was aborted while the seeder locked");
	}
	locked_ = true;
	lockedAt_ = at;
	if (!flushed) {
		abortLocked(leecherId, "flushing the source failed: " + flushed.error().message());
		return fail(flushed.error(), "flushing the source failed");
	}
	SeederPeer *p = peer(leecherId);
	auto round = p->view->take();
	if (!round) {
		abortLocked(leecherId, "cannot take the final dirty set");
		return fail(round.error(), "cannot take the final dirty set");
	}
	p->finalList = round->chunks;
	logger()->info("migration {}: locked for the handover to '{}'; final list of {} chunks (round {})",
		       options_.migrationId, leecherId, round->chunks.size(), round->round);
	return std::move(*round);
}

ResultMsg<void> SeederCore::commit(const FinalizeCommit &commit)
{
	{
		std::lock_guard lock(mutex_);
		SeederPeer *p = peer(commit.leecherId);
		if (!p)
			return fail(ENOENT, "no such leecher");
		if (!locked_ && handover_.finalizing() == commit.leecherId)
			return fail(EPROTO, "a commit before the final list was sent");
		auto ok = handover_.commit(commit);
		if (!ok)
			return ok;
		// The commit point: this side never writes again. Writers the lock held back
		// meet the sealed fence when it opens.
		fence_->seal();
		lock_->unlock();
		locked_ = false;
		downtime_ = std::chrono::steady_clock::now() - lockedAt_;
		p->finalList.clear();
		(void)p->state.commit(true);
		logger()->info("migration {}: handed over to '{}' at epoch {} (locked {} ms)", options_.migrationId,
			       commit.leecherId, handover_.epoch(),
			       std::chrono::duration_cast<std::chrono::milliseconds>(downtime_).count());
	}
	changed_.notify_all();
	report();
	return {};
}

void SeederCore::abortHandover(const std::string &leecherId, const std::string &why)
{
	{
		std::lock_guard lock(mutex_);
		abortLocked(leecherId, why);
	}
	report();
}

void SeederCore::abortLocked(const std::string &leecherId, const std::string &why)
{
	if (handover_.finalizing() == leecherId)
		(void)handover_.abort(leecherId, why);
	if (handover_.handedOver())
		return;
	SeederPeer *p = peer(leecherId);
	if (p && p->state.phase() == Phase::Finalizing)
		(void)p->state.abortFinalize();
	if (p && !p->finalList.empty()) {
		(void)p->view->requeue(p->finalList);
		p->finalList.clear();
	}
	if (locked_) {
		lock_->unlock();
		locked_ = false;
		logger()->warn("migration {}: handover to '{}' aborted ({}); the seeder owns the region again and goes on",
			       options_.migrationId, leecherId, why);
	}
	if (suspended_) {
		suspended_ = false;
		if (options_.onResume)
			options_.onResume();
	}
}

void SeederCore::complete(const std::string &leecherId)
{
	{
		std::lock_guard lock(mutex_);
		SeederPeer *p = peer(leecherId);
		if (!p)
			return;
		if (p->state.phase() == Phase::PostCopy)
			(void)p->state.complete();
		if (handover_.owner() == leecherId)
			ownerComplete_ = true;
		logger()->info("migration {}: leecher '{}' has the whole region{}", options_.migrationId, leecherId,
			       handover_.owner() == leecherId ? " (the owner)" : " (a read-only copy)");
	}
	changed_.notify_all();
	report();
}

void SeederCore::watchdog()
{
	std::unique_lock lock(mutex_);
	while (!stopping_) {
		changed_.wait_for(lock, std::chrono::milliseconds(50));
		std::string leecher = handover_.finalizing();
		if (!leecher.empty() && handover_.expire()) {
			abortLocked(leecher, "no commit within the commit timeout");
			lock.unlock();
			report();
			lock.lock();
		}
	}
}

bool SeederCore::handedOver() const
{
	std::lock_guard lock(mutex_);
	return handover_.handedOver();
}

std::chrono::nanoseconds SeederCore::lockedFor() const
{
	std::lock_guard lock(mutex_);
	return locked_ ? std::chrono::steady_clock::now() - lockedAt_ : std::chrono::nanoseconds{ 0 };
}

uint64_t SeederCore::epoch() const
{
	std::lock_guard lock(mutex_);
	return handover_.epoch();
}

bool SeederCore::waitOwnerComplete(std::chrono::milliseconds timeout)
{
	std::unique_lock lock(mutex_);
	return changed_.wait_for(lock, timeout, [&] { return ownerComplete_ || stopping_; }) && ownerComplete_;
}

MigrationProgress SeederCore::progress() const
{
	std::lock_guard lock(mutex_);
	MigrationProgress pr;
	pr.role = Role::Seeder;
	pr.migrationId = options_.migrationId;
	pr.regionBytes = source_->size();
	pr.owner = !handover_.handedOver();
	pr.downtime = downtime_;
	pr.transferredBytes = servedBytes_ ? servedBytes_() : 0;
	bool anyPreCopy = false;
	for (const auto &[id, p] : peers_) {
		if (p->session)
			pr.leechers++;
		pr.round = std::max(pr.round, p->state.round());
		uint64_t pending = std::min(pr.regionBytes, p->view->pendingChunks() * options_.chunkSize);
		pr.dirtyBytes = std::max(pr.dirtyBytes, pending);
		anyPreCopy |= p->state.phase() != Phase::Tracking;
	}
	pr.remoteBytes = pr.dirtyBytes;
	if (ownerComplete_)
		pr.phase = Phase::Complete;
	else if (handover_.handedOver())
		pr.phase = Phase::PostCopy;
	else if (!handover_.finalizing().empty())
		pr.phase = Phase::Finalizing;
	else
		pr.phase = anyPreCopy ? Phase::PreCopy : Phase::Tracking;
	return pr;
}

void SeederCore::report()
{
	if (options_.onProgress)
		options_.onProgress(progress());
}

} // namespace r3d::migration
