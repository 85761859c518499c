#include "sync/sync_push.hpp"

#include "sync/chunk_hasher.hpp"

#include <algorithm>
#include <cstring>
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

std::string RoundReport::json() const
{
	std::string dests;
	for (const auto &d : destinations) {
		if (!dests.empty())
			dests += ",";
		dests += fmt::format("{{\"to\":{},\"acked_generation\":{},\"chunks_changed\":{},\"bytes_sent\":{}", jsonString(d.to),
				     d.ackedGeneration, d.chunksChanged, d.bytesSent);
		if (d.error)
			dests += fmt::format(",\"error\":{}", jsonString(d.message));
		dests += "}";
	}
	return fmt::format("{{\"round\":{},\"generation\":{},\"size\":{},\"chunks\":{},\"chunks_changed\":{},"
			   "\"bytes_sent\":{},\"wire_bytes\":{},\"hash_seconds\":{:.6f},\"seconds\":{:.6f},"
			   "\"destinations\":[{}]}}",
			   round, generation, size, chunks, chunksChanged, bytesSent, wireBytes, hashSeconds, seconds, dests);
}

ResultMsg<std::unique_ptr<SyncPush>> SyncPush::create(Runtime &runtime, ThreadPool &pool, SyncPushOptions options)
{
	std::unique_ptr<SyncPush> push(new SyncPush(pool, std::move(options)));
	for (const auto &link : push->options_.links) {
		SyncSenderOptions so;
		so.link = link;
		so.chunk = push->options_.chunk;
		auto sender = SyncSender::create(runtime, so);
		if (!sender)
			return unexpectedOf(sender.error());
		push->senders_.push_back(std::move(*sender));
	}
	return push;
}

SyncPush::SyncPush(ThreadPool &pool, SyncPushOptions options) : pool_(pool), options_(std::move(options)) {}

SyncPush::~SyncPush() = default;

ResultMsg<RoundReport> SyncPush::round()
{
	auto start = Clock::now();
	RoundReport report;
	report.round = ++rounds_;
	UniqueFd fd(::open(options_.source.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.isValid())
		return fail(errno, fmt::format("open {}: {}", options_.source, std::strerror(errno)));
	struct stat st;
	if (::fstat(fd.get(), &st) != 0)
		return fail(errno, fmt::format("stat {}: {}", options_.source, std::strerror(errno)));
	// The size as of now; a file that grows or shrinks meanwhile is caught up next round.
	report.size = static_cast<uint64_t>(st.st_size);
	// A block device (a mount's /dev/nbdN, a loop device) has no st_size.
	if (S_ISBLK(st.st_mode) && ::ioctl(fd.get(), BLKGETSIZE64, &report.size) != 0)
		return fail(errno, fmt::format("size of {}: {}", options_.source, std::strerror(errno)));
	ChunkHasher hasher(&pool_, options_.chunk);
	auto hashes = hasher.hashFile(fd.get(), report.size);
	if (!hashes)
		return unexpectedOf(hashes.error());
	report.hashSeconds = since(start);
	report.chunks = hashes->size();

	SyncSourceView view;
	view.size = report.size;
	view.hashes = &*hashes;
	int rawFd = fd.get();
	view.read = [rawFd](std::span<std::byte> buf, uint64_t offset) { return readZeroPadded(rawFd, buf, offset); };

	report.destinations.resize(senders_.size());
	std::vector<std::thread> threads;
	for (size_t i = 0; i < senders_.size(); ++i) {
		threads.emplace_back([this, i, &view, &report] {
			auto &d = report.destinations[i];
			d.to = options_.targets[i];
			auto backoff = options_.backoff;
			for (unsigned attempt = 0; attempt < options_.attempts; ++attempt) {
				auto r = senders_[i]->push(view);
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
				if (stopping_ || attempt + 1 == options_.attempts)
					break;
				std::this_thread::sleep_for(backoff);
				backoff = std::min(backoff * 2, options_.maxBackoff);
			}
			d.ackedGeneration = senders_[i]->ackedGeneration();
		});
	}
	for (auto &t : threads)
		t.join();
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
