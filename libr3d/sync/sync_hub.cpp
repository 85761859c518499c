#include "sync/sync_hub.hpp"

#include "sync/chunk_hasher.hpp"

#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <r3d/log.hpp>
#include <r3d/unique_fd.hpp>

#include "base/file_io.hpp"

namespace r3d::sync {

struct SyncHub::Destination {
	size_t index = 0;
	std::map<std::string, std::unique_ptr<SyncSender>> senders; ///< by copy name; its thread only
	std::map<std::string, HubDestinationStatus> status;          ///< under mutex_
	std::thread thread;
};

std::string HubDestinationStatus::json() const
{
	std::string out = fmt::format("{{\"to\":\"{}\",\"name\":\"{}\",\"hub_generation\":{},\"acked_generation\":{},"
				      "\"lag\":{},\"pending_chunks\":{}",
				      to, name, hubGeneration, ackedGeneration, lag(), pendingChunks);
	if (error)
		out += fmt::format(",\"error\":\"{}\",\"error_kind\":\"{}\"", message, syncErrorKindName(kind));
	return out + "}";
}

SyncHub::SyncHub(Runtime &runtime, SyncHubOptions options) : runtime_(runtime), options_(std::move(options))
{
	for (size_t i = 0; i < options_.links.size(); ++i) {
		auto d = std::make_unique<Destination>();
		d->index = i;
		destinations_.push_back(std::move(d));
	}
	for (auto &d : destinations_)
		d->thread = std::thread([this, dp = d.get()] { loop(*dp); });
}

SyncHub::~SyncHub()
{
	stop();
}

void SyncHub::stop()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	changed_.notify_all();
	for (auto &d : destinations_) {
		for (auto &[name, s] : d->senders)
			if (s)
				s->close();
		if (d->thread.joinable())
			d->thread.join();
	}
}

void SyncHub::applied(const AppliedGeneration &generation, const SyncReceiver &receiver)
{
	if (generation.error)
		return;
	{
		std::lock_guard lock(mutex_);
		auto &c = copies_[generation.name];
		c.generation = receiver.generation();
		c.size = receiver.size();
		c.chunk = receiver.chunk();
		c.hashes = std::make_shared<const std::vector<ChunkHash>>(receiver.hashes());
	}
	changed_.notify_all();
}

std::vector<HubDestinationStatus> SyncHub::status() const
{
	std::lock_guard lock(mutex_);
	std::vector<HubDestinationStatus> out;
	for (const auto &d : destinations_)
		for (const auto &[name, s] : d->status)
			out.push_back(s);
	return out;
}

void SyncHub::loop(Destination &d)
{
	auto log = r3d::log::get("sync");
	const std::string &to = options_.targets[d.index];
	std::map<std::string, std::chrono::milliseconds> backoff;
	std::unique_lock lock(mutex_);
	for (;;) {
		// The copies this destination is behind on.
		std::vector<std::pair<std::string, CopyState>> work;
		for (const auto &[name, c] : copies_) {
			auto it = d.status.find(name);
			if (it != d.status.end() && it->second.refused())
				continue; // a retry would be refused alike
			if (it == d.status.end() || it->second.hubGeneration != c.generation || it->second.error)
				work.emplace_back(name, c);
		}
		if (stopping_)
			return;
		if (work.empty()) {
			changed_.wait(lock);
			continue;
		}
		lock.unlock();
		std::chrono::milliseconds wait{ 0 };
		for (auto &[name, c] : work) {
			auto &sender = d.senders[name];
			if (!sender || sender->options().chunk != c.chunk) {
				SyncSenderOptions so;
				so.link = options_.links[d.index];
				so.link.name = name;
				so.link.clientName = "r3sync-hub";
				so.chunk = c.chunk;
				auto s = SyncSender::create(runtime_, so);
				if (!s) {
					log->error("hub: {}: {}", to, s.error().message);
					continue;
				}
				sender = std::move(*s);
			}
			std::string path = options_.dir + "/" + name;
			UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
			HubDestinationStatus st;
			st.to = to;
			st.name = name;
			st.hubGeneration = c.generation;
			if (!fd.isValid()) {
				st.error = errno;
				st.message = fmt::format("open {}: {}", path, std::strerror(errno));
			} else {
				SyncSourceView view;
				view.size = c.size;
				view.hashes = c.hashes.get();
				int raw = fd.get();
				view.read = [raw](std::span<std::byte> buf, uint64_t offset) { return readZeroPadded(raw, buf, offset); };
				auto r = sender->push(view);
				if (!r) {
					st.error = r.error().code.value() ? r.error().code.value() : EIO;
					st.message = r.error().message;
					st.kind = sender->lastFailure();
				}
				st.pendingChunks = r ? 0 : (sender->connected() ? sender->changedChunks(view).size() : 0);
			}
			st.ackedGeneration = sender->ackedGeneration();
			if (st.refused()) {
				log->error("hub: {} '{}': {}: not retried ({})", to, name, st.message,
					   syncErrorKindName(st.kind));
			} else if (st.error) {
				auto &b = backoff[name];
				b = b.count() == 0 ? options_.retry : std::min(b * 2, options_.maxRetry);
				wait = wait.count() == 0 ? b : std::min(wait, b);
				log->warn("hub: {} '{}': {} (retry in {} ms)", to, name, st.message, b.count());
			} else {
				backoff[name] = std::chrono::milliseconds{ 0 };
			}
			if (onPushed)
				onPushed(st);
			std::lock_guard g(mutex_);
			d.status[name] = st;
		}
		lock.lock();
		if (wait.count() && !stopping_)
			changed_.wait_for(lock, wait);
	}
}

} // namespace r3d::sync
