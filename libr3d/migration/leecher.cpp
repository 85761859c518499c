#include "migration/leecher.hpp"

#include <fmt/format.h>

#include <r3d/log.hpp>

#include "backends/remote_backend.hpp"
#include "base/hex.hpp"
#include "base/runtime.hpp"
#include "migration/chunk_set_assembler.hpp"
#include "migration/control_link.hpp"
#include "migration/leecher_region.hpp"

namespace r3d::migration {
namespace {

using Clock = std::chrono::steady_clock;

auto logger()
{
	return r3d::log::get("migration");
}

/// Refusals and broken messages end the migration; everything else is the link.
bool fatal(const Error &e)
{
	switch (e.code.value()) {
	case EPROTO:
	case EPROTONOSUPPORT:
	case EACCES:
	case ENOENT:
	case EEXIST:
	case EINVAL:
	case ESTALE:
		return true;
	default:
		return false;
	}
}

} // namespace

Leecher::Leecher(LeecherOptions options)
	: options_(std::move(options)), controller_(options_.convergence),
	  handover_(options_.migrationId, options_.leecherId), state_(Role::Leecher)
{
}

ResultMsg<std::unique_ptr<Leecher>> Leecher::connect(Runtime &runtime, LeecherOptions options)
{
	if (options.leecherId.empty())
		options.leecherId = randomHexId();
	if (options.migrationId.empty())
		return fail(EINVAL, "leecher: no migration id (r3://HOST:PORT/ID)");
	std::unique_ptr<Leecher> l(new Leecher(options));
	ControlLinkOptions co;
	co.host = options.host;
	co.port = options.port;
	co.migrationId = options.migrationId;
	co.tls = options.tls;
	co.token = options.token;
	co.clientName = "leecher " + options.leecherId;
	co.connectTimeout = options.connectTimeout;
	auto link = ControlLink::create(runtime, co);
	if (!link)
		return unexpectedOf(link.error());
	l->link_ = std::move(*link);
	if (auto c = l->link_->connect(); !c)
		return unexpectedOf(c.error());
	if (auto g = l->greet(false); !g)
		return unexpectedOf(g.error());

	// The data path: the seeder's block export, reconnecting on its own; a read waits for it
	// through a cut for postCopyTimeout, then fails with EIO.
	transport::RpcClientOptions ro;
	ro.host = options.host;
	ro.port = options.port;
	ro.exportName = options.migrationId;
	ro.tls = options.tls;
	ro.token = options.token;
	ro.clientName = co.clientName;
	ro.connections = std::max(1u, options.connections);
	ro.connectTimeout = options.connectTimeout;
	ro.requestTimeout = std::min<std::chrono::milliseconds>(options.postCopyTimeout, std::chrono::seconds(10));
	ro.deadline = options.postCopyTimeout;
	auto remote = backends::RemoteBackend::open(runtime, ro);
	if (!remote)
		return unexpectedOf(remote.error());
	if ((*remote)->size() != l->regionSize_)
		return fail(EMEDIUMTYPE, fmt::format("the seeder's export has {} bytes, its migration {}",
						     (*remote)->size(), l->regionSize_));
	l->remote_ = std::shared_ptr<ReadWriterAt>(std::move(*remote));
	stages::PullerOptions po;
	po.workers = std::max(1u, options.pullWorkers);
	po.rate = options.pullRate;
	po.remoteTimeout = options.postCopyTimeout;
	auto region = LeecherRegion::open(l->remote_, l->chunk_, std::move(po));
	if (!region)
		return unexpectedOf(region.error());
	l->region_ = std::move(*region);
	logger()->info("migration {}: leecher '{}' pulling {} bytes in chunks of {} from {}:{}", options.migrationId,
		       options.leecherId, l->regionSize_, l->chunk_, options.host, options.port);
	l->driver_ = std::thread([p = l.get()] { p->driverLoop(); });
	return l;
}

Leecher::~Leecher()
{
	stop();
}

std::shared_ptr<ReadWriterAt> Leecher::region() const
{
	return region_->top();
}

void Leecher::finalize()
{
	finalizeAsked_ = true;
	controller_.requestFinalize();
	{
		std::lock_guard lock(mutex_);
		++finalizeAsks_;
	}
	changed_.notify_all();
}

void Leecher::stop()
{
	if (stopping_.exchange(true))
		return;
	changed_.notify_all();
	if (link_)
		link_->close();
	if (driver_.joinable())
		driver_.join();
}

bool Leecher::wait(std::chrono::milliseconds timeout)
{
	std::unique_lock lock(mutex_);
	changed_.wait_for(lock, timeout, [&] { return state_.terminal(); });
	return state_.phase() == Phase::Complete;
}

Phase Leecher::phase() const
{
	std::lock_guard lock(mutex_);
	return state_.phase();
}

bool Leecher::owner() const
{
	return owner_;
}

MigrationProgress Leecher::progress() const
{
	MigrationProgress pr;
	pr.role = Role::Leecher;
	pr.migrationId = options_.migrationId;
	pr.regionBytes = regionSize_;
	pr.bandwidth = controller_.bandwidth();
	pr.dirtyRate = controller_.dirtyRate();
	pr.predictedDowntime = controller_.predictedDowntime();
	pr.owner = owner_;
	if (region_) {
		pr.transferredBytes = region_->pulledBytes();
		pr.remoteBytes = region_->missingBytes();
	}
	std::lock_guard lock(mutex_);
	pr.phase = state_.phase();
	pr.round = state_.round();
	pr.dirtyBytes = lastDirtyBytes_;
	pr.downtime = downtime_;
	pr.failure = state_.failure();
	pr.leechers = 1;
	return pr;
}

void Leecher::report()
{
	if (options_.onProgress)
		options_.onProgress(progress());
}

void Leecher::setPhase(const std::function<ResultMsg<void>(MigrationState &)> &move)
{
	{
		std::lock_guard lock(mutex_);
		if (auto ok = move(state_); !ok)
			logger()->debug("migration {}: {}", options_.migrationId, ok.error().message);
	}
	changed_.notify_all();
	report();
}

ResultMsg<WireMessage> Leecher::expect(MessageType type)
{
	auto m = link_->receive(options_.messageTimeout);
	if (!m)
		return m;
	if (m->type != type)
		return fail(EPROTO, fmt::format("the seeder sent a {} where a {} was due", messageTypeName(m->type),
						messageTypeName(type)));
	return m;
}

ResultMsg<void> Leecher::greet(bool resuming)
{
	MigrationHello hello;
	hello.migrationId = options_.migrationId;
	hello.leecherId = options_.leecherId;
	hello.regionSize = regionSize_;
	hello.chunkSize = chunk_;
	hello.epoch = handover_.epoch();
	if (auto s = link_->send(MessageType::Hello, encode(hello)); !s)
		return s;
	auto m = expect(MessageType::HelloReply);
	if (!m)
		return unexpectedOf(m.error());
	auto reply = decodeMigrationHelloReply(m->bytes());
	if (!reply)
		return unexpectedOf(reply.error());
	if (auto ok = handover_.welcomed(*reply); !ok)
		return ok;
	owner_ = handover_.mayWrite();
	if (!resuming) {
		if (auto ok = checkRegion(RegionShape{ reply->regionSize, reply->chunkSize }); !ok)
			return ok;
		regionSize_ = reply->regionSize;
		chunk_ = reply->chunkSize;
		return {};
	}
	// Tell the seeder where this side is, so it sends again what the cut lost.
	auto held = region_->heldChunks();
	auto windows = splitWindows(held, RegionShape{ regionSize_, chunk_ }.chunks());
	for (size_t i = 0; i < windows.size(); ++i) {
		Resume r{ options_.migrationId, options_.leecherId, handover_.epoch(), applied_, std::move(windows[i]),
			  i + 1 == windows.size() };
		if (auto s = link_->send(MessageType::Resume, encode(r)); !s)
			return s;
	}
	logger()->info("migration {}: reconnected at round {} ({} chunks here)", options_.migrationId, applied_,
		       held.size());
	return {};
}

ResultMsg<std::vector<uint64_t>> Leecher::receiveList(uint64_t &round, bool handover)
{
	RegionShape shape{ regionSize_, chunk_ };
	ChunkSetAssembler assembler(shape.chunks());
	while (!assembler.complete()) {
		auto m = expect(MessageType::DirtyList);
		if (!m)
			return unexpectedOf(m.error());
		auto part = decodeDirtyList(m->bytes(), shape);
		if (!part)
			return unexpectedOf(part.error());
		if (handover)
			if (auto ok = handover_.finalList(*part); !ok)
				return unexpectedOf(ok.error());
		if (auto ok = assembler.add(part->chunks, part->last, part->round, part->epoch); !ok)
			return unexpectedOf(ok.error());
	}
	round = assembler.round();
	return assembler.take();
}

ResultMsg<void> Leecher::takeRound(uint64_t &bytes)
{
	if (auto s = link_->send(MessageType::RoundRequest, encode(RoundRequest{ applied_ })); !s)
		return s;
	uint64_t round = 0;
	auto chunks = receiveList(round, false);
	if (!chunks)
		return unexpectedOf(chunks.error());
	region_->markRemote(*chunks);
	{
		std::lock_guard lock(mutex_);
		applied_ = round;
		bytes = chunkBytes(*chunks, regionSize_, chunk_);
		lastDirtyBytes_ = bytes;
	}
	return {};
}

bool Leecher::waitAllLocal(bool interruptible)
{
	auto lastReport = Clock::now();
	while (!stopping_) {
		if (region_->missingChunks() == 0)
			return true;
		if (interruptible && finalizeAsked_)
			return false;
		{
			std::unique_lock lock(mutex_);
			changed_.wait_for(lock, std::chrono::milliseconds(2));
		}
		if (Clock::now() - lastReport > std::chrono::milliseconds(500)) {
			lastReport = Clock::now();
			report();
		}
	}
	return false;
}

Leecher::Step Leecher::failWith(const std::string &why)
{
	logger()->error("migration {}: failed: {}", options_.migrationId, why);
	setPhase([&](MigrationState &s) { return s.fail(why); });
	return Step::Failed;
}

Leecher::Step Leecher::linkError(const Error &error)
{
	if (stopping_)
		return Step::Done;
	if (fatal(error))
		return failWith(error.message);
	auto step = handover_.step();
	if (step == LeecherHandover::Step::Requested || step == LeecherHandover::Step::Receiving)
		handover_.abort();
	logger()->warn("migration {}: the link to the seeder was lost: {}; resuming", options_.migrationId,
		       error.message);
	return Step::LinkLost;
}

void Leecher::driverLoop()
{
	for (;;) {
		Step step = drive();
		if (step == Step::Again && !stopping_)
			continue;
		if (step != Step::LinkLost || stopping_)
			break;
		setPhase([](MigrationState &s) { return s.linkLost(); });
		auto deadline = Clock::now() + options_.resumeTimeout;
		auto backoff = std::chrono::milliseconds(100);
		bool back = false;
		std::string lastError;
		while (!stopping_ && Clock::now() < deadline) {
			{
				std::unique_lock lock(mutex_);
				changed_.wait_for(lock, backoff, [&] { return stopping_.load(); });
			}
			if (stopping_)
				break;
			backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
			auto c = link_->connect();
			auto g = c ? greet(true) : ResultMsg<void>(unexpectedOf(c.error()));
			if (g) {
				back = true;
				break;
			}
			lastError = g.error().message;
			if (c && fatal(g.error())) {
				failWith("resuming failed: " + lastError);
				return;
			}
		}
		if (!back) {
			if (!stopping_)
				failWith(fmt::format("the link to the seeder stayed down for {} ms: {}",
						     options_.resumeTimeout.count(), lastError));
			break;
		}
		Phase from, to;
		{
			std::lock_guard lock(mutex_);
			from = to = state_.resumeFrom();
		}
		if (from == Phase::Finalizing) {
			to = handover_.mayWrite() ? Phase::PostCopy : beforeFinalize_;
			if (to == Phase::PostCopy) {
				// Our commit went through; its ack was lost with the link.
				region_->unlock();
				owner_ = true;
			}
		}
		setPhase([to](MigrationState &s) { return s.resume(to); });
	}
	changed_.notify_all();
}

Leecher::Step Leecher::drive()
{
	switch (phase()) {
	case Phase::Tracking:
	case Phase::PreCopy:
		return preCopy();
	case Phase::Finalizing:
		return finalizeStep();
	case Phase::PostCopy:
		return postCopy();
	default:
		return Step::Done;
	}
}

Leecher::Step Leecher::preCopy()
{
	auto startRound = [&] {
		if (roundOpen_)
			return;
		controller_.beginRound();
		pulledAtRoundStart_ = region_->pulledBytes();
		roundOpen_ = true;
	};
	startRound();
	for (;;) {
		waitAllLocal(true);
		if (stopping_)
			return Step::Done;
		if (finalizeAsked_)
			return finalizeStep();
		uint64_t bytes = 0;
		if (auto r = takeRound(bytes); !r)
			return linkError(r.error());
		uint64_t sent = region_->pulledBytes() - pulledAtRoundStart_;
		roundOpen_ = false;
		auto verdict = controller_.endRound(bytes, sent);
		bool first = phase() == Phase::Tracking;
		setPhase([first](MigrationState &s) { return first ? s.firstPassDone() : s.roundDone(); });
		logger()->debug("migration {}: round {}: {} dirty bytes, predicted downtime {} us", options_.migrationId,
				applied_, bytes,
				verdict.predictedDowntime == std::chrono::nanoseconds::max()
					? -1
					: std::chrono::duration_cast<std::chrono::microseconds>(verdict.predictedDowntime)
						  .count());
		if (finalizeAsked_ || (options_.autoFinalize && verdict.decision == Decision::Finalize)) {
			if (verdict.decision == Decision::Finalize)
				logger()->info("migration {}: finalizing after round {}: {}", options_.migrationId, applied_,
					       finalizeReasonName(verdict.reason));
			return finalizeStep();
		}
		if (!options_.autoFinalize && bytes <= chunk_) {
			// Manual finalize and little to do: do not spin on empty rounds.
			std::unique_lock lock(mutex_);
			changed_.wait_for(lock, std::chrono::milliseconds(20));
		}
		startRound();
	}
}

Leecher::Step Leecher::finalizeStep()
{
	auto request = handover_.request(applied_);
	if (!request)
		return failWith(request.error().message);
	{
		std::lock_guard lock(mutex_);
		if (state_.phase() != Phase::Finalizing)
			beforeFinalize_ = state_.phase();
	}
	setPhase([](MigrationState &s) { return s.beginFinalize(); });
	if (auto s = link_->send(MessageType::FinalizeRequest, encode(*request)); !s)
		return linkError(s.error());
	auto m = expect(MessageType::FinalizeAck);
	if (!m)
		return linkError(m.error());
	auto ack = decodeFinalizeAck(m->bytes());
	if (!ack)
		return failWith(ack.error().message);
	// The downtime runs from the seeder's lock: what it had been locked when it acked, plus
	// from the ack here to the unlock (the ack's one-way trip is not counted).
	auto lockedAtAck = std::chrono::nanoseconds(ack->lockedNs);
	auto acked = Clock::now();
	if (auto ok = handover_.acked(*ack); !ok) {
		setPhase([](MigrationState &s) { return s.abortFinalize(); });
		int code = ok.error().code.value();
		if (code == EPERM)
			return readOnlyCopy();
		if (code == EBUSY || code == ECANCELED || code == ESTALE) {
			// Another leecher finalizes, or this handover was aborted (the app said no, the hook
			// failed): go on and ask again, backing off so a refusing app is not asked 10 times a
			// second. An explicit finalize() asks again at once.
			auto wait = std::min(kRefusedFirstWait * (1u << std::min(refusals_, 6u)), kRefusedMaxWait);
			++refusals_;
			logger()->info("migration {}: finalize refused for now ({} in a row, next ask in {} ms): {}",
				       options_.migrationId, refusals_, wait.count(), ok.error().message);
			std::unique_lock lock(mutex_);
			uint64_t asks = finalizeAsks_;
			if (changed_.wait_for(lock, wait, [&] { return stopping_.load() || finalizeAsks_ != asks; }))
				refusals_ = 0;
			return Step::Again;
		}
		return failWith(ok.error().message);
	}
	uint64_t round = 0;
	auto last = receiveList(round, true);
	if (!last)
		return linkError(last.error());
	region_->markRemote(*last);
	{
		std::lock_guard lock(mutex_);
		applied_ = round;
		lastDirtyBytes_ = chunkBytes(*last, regionSize_, chunk_);
	}
	auto commit = handover_.commit();
	if (!commit)
		return failWith(commit.error().message);
	if (auto s = link_->send(MessageType::FinalizeCommit, encode(*commit)); !s)
		return linkError(s.error());
	auto cm = expect(MessageType::FinalizeCommitAck);
	if (!cm)
		return linkError(cm.error());
	auto commitAck = decodeFinalizeCommitAck(cm->bytes());
	if (!commitAck)
		return failWith(commitAck.error().message);
	if (auto ok = handover_.commitAcked(*commitAck); !ok) {
		// The seeder gave up on this proposal (its commit timeout): it owns and goes on.
		logger()->warn("migration {}: commit refused: {}", options_.migrationId, ok.error().message);
		handover_.abort();
		setPhase([](MigrationState &s) { return s.abortFinalize(); });
		return Step::Again;
	}
	region_->unlock();
	owner_ = true;
	refusals_ = 0;
	{
		std::lock_guard lock(mutex_);
		downtime_ = lockedAtAck + (Clock::now() - acked);
	}
	logger()->info("migration {}: took ownership at epoch {} ({} chunks left to post-copy, downtime {} us)",
		       options_.migrationId, handover_.epoch(), region_->missingChunks(),
		       std::chrono::duration_cast<std::chrono::microseconds>(downtime_).count());
	setPhase([](MigrationState &s) { return s.commit(true); });
	return postCopy();
}

Leecher::Step Leecher::readOnlyCopy()
{
	// Another leecher owns the region and the seeder never writes again, so the list taken
	// now is the last one: with it this copy is the final state.
	uint64_t bytes = 0;
	if (auto r = takeRound(bytes); !r)
		return linkError(r.error());
	region_->seal();
	region_->unlock();
	{
		std::lock_guard lock(mutex_);
		readOnly_ = true;
	}
	logger()->info("migration {}: another leecher took ownership; this one is a read-only copy",
		       options_.migrationId);
	setPhase([](MigrationState &s) { return s.beginFinalize(); });
	setPhase([](MigrationState &s) { return s.commit(false); });
	return postCopy();
}

Leecher::Step Leecher::postCopy()
{
	if (!waitAllLocal(false))
		return Step::Done; // stopping
	if (auto s = link_->send(MessageType::Complete, ""); !s)
		return linkError(s.error());
	logger()->info("migration {}: complete: the whole region is here", options_.migrationId);
	setPhase([](MigrationState &s) { return s.complete(); });
	return Step::Done;
}

} // namespace r3d::migration
