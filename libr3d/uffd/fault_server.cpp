#include "uffd/fault_server.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include "r3d/log.hpp"

namespace r3d::uffd {
namespace {

auto logger()
{
	return r3d::log::get("uffd");
}

} // namespace

ResultMsg<std::shared_ptr<FaultServer>> FaultServer::create(unsigned workers)
{
	UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
	if (!ep)
		return fail(lastErrno(), fmt::format("epoll_create1: {}", std::strerror(errno)));
	UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (!stop)
		return fail(lastErrno(), fmt::format("eventfd: {}", std::strerror(errno)));
	epoll_event ev{};
	ev.events = EPOLLIN;
	ev.data.ptr = nullptr;
	if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, stop.get(), &ev) != 0)
		return fail(lastErrno(), fmt::format("epoll_ctl: {}", std::strerror(errno)));
	if (workers == 0)
		workers = std::max(4u, 2 * std::thread::hardware_concurrency());
	return std::shared_ptr<FaultServer>(new FaultServer(std::move(ep), std::move(stop), workers));
}

ResultMsg<std::shared_ptr<FaultServer>> FaultServer::shared()
{
	static std::mutex mutex;
	static std::weak_ptr<FaultServer> current;
	std::lock_guard lock(mutex);
	if (auto s = current.lock())
		return s;
	auto s = create();
	if (s)
		current = *s;
	return s;
}

FaultServer::FaultServer(UniqueFd epoll, UniqueFd stop, unsigned workers)
	: epoll_(std::move(epoll)), stop_(std::move(stop)), pool_(std::make_unique<ThreadPool>(workers))
{
	thread_ = std::thread([this] { loop(); });
	loopId_ = thread_.get_id();
}

FaultServer::~FaultServer()
{
	uint64_t one = 1;
	if (::write(stop_.get(), &one, sizeof one) < 0)
		logger()->error("fault server: cannot stop its thread: {}", std::strerror(errno));
	thread_.join();
	pool_.reset(); // runs what was posted, then joins
}

Result<void> FaultServer::add(int fd, Source *source)
{
	// From onReadable() (a forked child's uffd) the reader holds mutex_ already.
	const bool onLoop = std::this_thread::get_id() == loopId_;
	if (onLoop)
		sources_[source] = fd;
	else {
		std::lock_guard lock(mutex_);
		sources_[source] = fd;
	}
	epoll_event ev{};
	ev.events = EPOLLIN;
	ev.data.ptr = source;
	if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
		auto e = lastErrno();
		if (onLoop)
			sources_.erase(source);
		else {
			std::lock_guard lock(mutex_);
			sources_.erase(source);
		}
		return unexpected(e);
	}
	return {};
}

void FaultServer::remove(Source *source)
{
	auto drop = [&] {
		auto it = sources_.find(source);
		if (it == sources_.end())
			return;
		(void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second, nullptr);
		sources_.erase(it);
	};
	if (std::this_thread::get_id() == loopId_) {
		drop(); // the reader holds mutex_ already
		return;
	}
	std::lock_guard lock(mutex_);
	drop();
}

void FaultServer::post(std::function<void()> job)
{
	pool_->post(std::move(job));
}

void FaultServer::loop()
{
	epoll_event events[16];
	for (;;) {
		int n = ::epoll_wait(epoll_.get(), events, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logger()->critical("fault server: epoll_wait: {}", std::strerror(errno));
			return;
		}
		std::lock_guard lock(mutex_);
		for (int i = 0; i < n; ++i) {
			auto *source = static_cast<Source *>(events[i].data.ptr);
			if (!source)
				return; // stop_
			if (sources_.count(source))
				source->onReadable();
		}
	}
}

} // namespace r3d::uffd
