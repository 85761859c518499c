#include "sync/sync_push.hpp"

#include "sync/chunk_hasher.hpp"
#include "sync/source_mapping.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/backend_uri.hpp>
#include <r3d/unique_fd.hpp>

#include "base/host_port.hpp"
#include "base/thread_pool.hpp"

namespace r3d::sync {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t)
{
	return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string jsonString(const std::string &s)
{
	std::string out = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\')
			out += '\\';
		if (static_cast<unsigned char>(c) < 0x20) {
			out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
			continue;
		}
		out += c;
	}
	return out + "\"";
}

} // namespace

ResultMsg<SyncLinkOptions> parseSyncTarget(const std::string &text, const std::string &defaultName)
{
	auto uri = BackendUri::parse(text);
	if (!uri || uri->scheme != "r3" || uri->authority.empty())
		return fail(EINVAL, fmt::format("'{}': expected r3://HOST:PORT[/NAME]", text));
	if (!uri->params.empty())
		return fail(EINVAL, fmt::format("'{}': no parameters here (use --tls-ca, --token-file)", text));
	auto hp = parseHostPort(uri->authority);
	if (!hp)
		return unexpectedOf(hp.error());
	SyncLinkOptions o;
	o.host = hp->host;
	o.port = hp->port;
	o.name = uri->path.starts_with("/") ? uri->path.substr(1) : uri->path;
	if (o.name.empty())
		o.name = defaultName;
	if (auto ok = checkSyncName(o.name); !ok)
		return fail(EINVAL, fmt::format("'{}': {}", text, ok.error().message));
	return o;
}

bool RoundReport::allAcked() const
{
	return std::all_of(destinations.begin(), destinations.end(), [](const auto &d) { return d.error == 0; });
}

const DestinationReport *RoundReport::refusal() const
{
	for (const auto &d : destinations)
		if (d.refused())
			return &d;
	return nullptr;
}

std::string RoundReport::json() const
{
	std::string dests;
	for (const auto &d : destinations) {
		if (!dests.empty())
			dests += ",";
		dests += fmt::format("{{\"to\":{},\"acked_generation\":{},\"chunks_changed\":{},\"bytes_sent\":{}", jsonString(d.to),
				     d.ackedGeneration, d.chunksChanged, d.bytesSent);
		if (d.lagging)
			dests += ",\"lagging\":true";
		if (d.error)
			dests += fmt::format(",\"error\":{},\"error_kind\":\"{}\"", jsonString(d.message),
					     syncErrorKindName(d.kind));
		dests += "}";
	}
	return fmt::format("{{\"round\":{},\"generation\":{},\"size\":{},\"chunks\":{},\"chunks_changed\":{},"
			   "\"bytes_sent\":{},\"wire_bytes\":{},\"hash_seconds\":{:.6f},\"hash_cpu_seconds\":{:.6f},"
			   "\"hash_threads\":{},\"seconds\":{:.6f},\"destinations\":[{}]}}",
			   round, generation, size, chunks, chunksChanged, bytesSent, wireBytes, hashSeconds, hashCpuSeconds,
			   hashThreads, seconds, dests);
}

/// One round's source: the file as opened and hashed then. Its bytes are read when sent,
/// so they may be newer than the hashes; the sender records the hashes of what it sent.
struct SyncPush::Snapshot {
	uint64_t round = 0;
	UniqueFd fd;
	SyncSourceView view;
	std::vector<ChunkHash> hashes;
};

struct SyncPush::Worker {
	size_t index = 0;
	std::unique_ptr<SyncSender> sender; ///< its thread only
	// Under mutex_:
	std::shared_ptr<const Snapshot> next; ///< the newest round not begun: the whole queue
	uint64_t busyRound = 0;               ///< the round being pushed, 0 when idle
	uint64_t doneRound = 0;               ///< the last round pushed (acknowledged or failed)
	DestinationReport done;               ///< its outcome
	uint64_t ackedGeneration = 0;
	/// Payload and wire bytes of pushes not reported yet (a lagging round's).
	uint64_t unreportedBytes = 0;
	uint64_t unreportedWire = 0;
	std::thread thread;
};

ResultMsg<std::unique_ptr<SyncPush>> SyncPush::create(Runtime &runtime, ThreadPool &pool, SyncPushOptions options)
{
	std::unique_ptr<SyncPush> push(new SyncPush(pool, std::move(options)));
	for (size_t i = 0; i < push->options_.links.size(); ++i) {
		SyncSenderOptions so;
		so.link = push->options_.links[i];
		so.chunk = push->options_.chunk;
		auto sender = SyncSender::create(runtime, so);
		if (!sender)
			return unexpectedOf(sender.error());
		auto w = std::make_unique<Worker>();
		w->index = i;
		w->sender = std::move(*sender);
		w->done.to = i < push->options_.targets.size() ? push->options_.targets[i] : "";
		push->workers_.push_back(std::move(w));
	}
	for (auto &w : push->workers_)
		w->thread = std::thread([p = push.get(), wp = w.get()] { p->work(*wp); });
	return push;
}

SyncPush::SyncPush(ThreadPool &pool, SyncPushOptions options) : pool_(pool), options_(std::move(options)) {}

SyncPush::~SyncPush()
{
	stop();
	for (auto &w : workers_)
		if (w->thread.joinable())
			w->thread.join();
}

void SyncPush::stop()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	changed_.notify_all();
	// Aborts a push waiting on a link that went quiet (a connect in progress ends at its
	// timeout).
	for (auto &w : workers_)
		w->sender->close();
}

DestinationReport SyncPush::pushOnce(Worker &w, const Snapshot &snapshot)
{
	DestinationReport d;
	d.to = w.done.to;
	if (w.done.refused()) {
		// A retry would be refused alike: report the refusal, do not knock again.
		d = w.done;
		d.chunksChanged = d.bytesSent = d.wireBytes = 0;
		return d;
	}
	auto backoff = options_.backoff;
	for (unsigned attempt = 0; attempt < options_.attempts; ++attempt) {
		auto r = w.sender->push(snapshot.view);
		if (r) {
			d.error = 0;
			d.message.clear();
			d.chunksChanged = r->chunksChanged;
			d.bytesSent += r->bytesSent;
			d.wireBytes += r->wireBytes;
			break;
		}
		d.error = r.error().code.value() ? r.error().code.value() : EIO;
		d.message = r.error().message;
		d.kind = w.sender->lastFailure();
		if (stopping_ || d.refused() || attempt + 1 == options_.attempts)
			break;
		std::unique_lock lock(mutex_);
		if (changed_.wait_for(lock, backoff, [this] { return stopping_.load(); }))
			break;
		backoff = std::min(backoff * 2, options_.maxBackoff);
	}
	d.ackedGeneration = w.sender->ackedGeneration();
	return d;
}

void SyncPush::work(Worker &w)
{
	std::unique_lock lock(mutex_);
	for (;;) {
		changed_.wait(lock, [&] { return stopping_ || w.next; });
		if (stopping_)
			return;
		auto snapshot = std::move(w.next);
		const uint64_t round = snapshot->round;
		w.busyRound = round;
		lock.unlock();
		auto d = pushOnce(w, *snapshot);
		snapshot.reset();
		lock.lock();
		w.busyRound = 0;
		w.doneRound = round;
		w.unreportedBytes += d.bytesSent;
		w.unreportedWire += d.wireBytes;
		w.ackedGeneration = d.ackedGeneration;
		w.done = std::move(d);
		changed_.notify_all();
	}
}

ResultMsg<RoundReport> SyncPush::round()
{
	auto start = Clock::now();
	RoundReport report;
	report.round = ++rounds_;
	auto snapshot = std::make_shared<Snapshot>();
	snapshot->round = report.round;
	snapshot->fd = UniqueFd(::open(options_.source.c_str(), O_RDONLY | O_CLOEXEC));
	if (!snapshot->fd.isValid())
		return fail(errno, fmt::format("open {}: {}", options_.source, std::strerror(errno)));
	struct stat st;
	if (::fstat(snapshot->fd.get(), &st) != 0)
		return fail(errno, fmt::format("stat {}: {}", options_.source, std::strerror(errno)));
	// The size as of now; a file that grows or shrinks meanwhile is caught up next round.
	report.size = static_cast<uint64_t>(st.st_size);
	// A block device (a mount's /dev/nbdN, a loop device) has no st_size.
	if (S_ISBLK(st.st_mode) && ::ioctl(snapshot->fd.get(), BLKGETSIZE64, &report.size) != 0)
		return fail(errno, fmt::format("size of {}: {}", options_.source, std::strerror(errno)));
	ChunkHasher hasher(&pool_, options_.chunk);
	HashStats stats;
	bool mapped = false;
	if (options_.keepMapping && report.round > 1 && report.size > 0) {
		if (!mapping_)
			mapping_ = std::make_unique<SourceMapping>();
		// A source that cannot be mapped (a pipe, /proc) is read as before.
		mapped = static_cast<bool>(mapping_->map(snapshot->fd.get(), report.size));
	}
	auto hashes = mapped ? hasher.hashMapped(mapping_->data(), snapshot->fd.get(), report.size, &stats)
			     : hasher.hashFile(snapshot->fd.get(), report.size, &stats);
	if (!hashes)
		return unexpectedOf(hashes.error());
	report.hashSeconds = since(start);
	report.hashCpuSeconds = stats.cpuSeconds;
	report.hashThreads = stats.threads;
	report.chunks = hashes->size();
	snapshot->hashes = std::move(*hashes);
	snapshot->view.size = report.size;
	snapshot->view.hashes = &snapshot->hashes;
	int rawFd = snapshot->fd.get();
	snapshot->view.read = [rawFd](std::span<std::byte> buf, uint64_t offset) { return readZeroPadded(rawFd, buf, offset); };

	std::unique_lock lock(mutex_);
	// A worker still on an older round gets this one next, in place of any it has not begun.
	for (auto &w : workers_)
		w->next = snapshot;
	snapshot.reset();
	changed_.notify_all();
	auto pushStart = Clock::now();
	auto doneNow = [&](const Worker &w) { return w.doneRound >= report.round; };
	std::optional<Clock::time_point> deadline;
	for (;;) {
		size_t done = std::count_if(workers_.begin(), workers_.end(), [&](const auto &w) { return doneNow(*w); });
		if (done == workers_.size() || stopping_)
			break;
		if (done > 0 && options_.lagWait.count() > 0 && !deadline) {
			auto first = Clock::now();
			deadline = first + std::max<Clock::duration>(options_.lagWait, first - pushStart);
		}
		if (deadline) {
			if (changed_.wait_until(lock, *deadline) == std::cv_status::timeout)
				break;
		} else {
			changed_.wait(lock);
		}
	}
	report.destinations.resize(workers_.size());
	for (size_t i = 0; i < workers_.size(); ++i) {
		auto &w = *workers_[i];
		auto &d = report.destinations[i];
		if (doneNow(w)) {
			d = w.done;
		} else {
			d.to = w.done.to;
			d.error = EINPROGRESS;
			d.lagging = true;
			d.message = w.busyRound ? fmt::format("still pushing round {}; it catches up from hashes", w.busyRound)
						: "stopped";
		}
		d.ackedGeneration = w.ackedGeneration;
		d.bytesSent = w.unreportedBytes;
		d.wireBytes = w.unreportedWire;
		w.unreportedBytes = w.unreportedWire = 0;
	}
	lock.unlock();
	for (const auto &d : report.destinations) {
		report.generation = std::max(report.generation, d.ackedGeneration);
		report.chunksChanged = std::max(report.chunksChanged, d.chunksChanged);
		report.bytesSent += d.bytesSent;
		report.wireBytes += d.wireBytes;
	}
	report.seconds = since(start);
	return report;
}

} // namespace r3d::sync
