#include "nbd/server.hpp"

#include <cstring>

#include <sys/prctl.h>

#include <r3d/log.hpp>

#include "base/runtime.hpp"
#include "base/thread_pool.hpp"
#include "nbd/protocol.hpp"
#include "nbd/session.hpp"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace r3d::nbd {

void markIoFlusher()
{
	// Needs CAP_SYS_RESOURCE; without it the risk stays but serving still works.
	if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0)
		log::get("nbd")->debug("PR_SET_IO_FLUSHER: {}", std::strerror(errno));
}

Server::Server(ServerOptions options) : options_(std::move(options)) {}

Server::~Server()
{
	shutdown();
	workers_.reset();
}

void Server::addExport(Export exp)
{
	exports_.push_back(std::move(exp));
}

const Export *Server::findExport(const std::string &name) const
{
	if (exports_.empty())
		return nullptr;
	for (const auto &e : exports_)
		if (e.name == name)
			return &e;
	return name.empty() ? &exports_.front() : nullptr;
}

uint16_t Server::transmissionFlags(const Export &exp, bool structuredReplies) const
{
	uint16_t flags = kFlagHasFlags | kFlagSendFlush | kFlagSendCache | kFlagCanMultiConn;
	if (structuredReplies)
		flags |= kFlagSendDf;
	if (exp.readOnly)
		flags |= kFlagReadOnly;
	else
		flags |= kFlagSendFua | kFlagSendTrim | kFlagSendWriteZeroes |
			 (exp.backend->canFastZero() ? kFlagSendFastZero : 0);
	return flags;
}

ThreadPool &Server::workers()
{
	if (options_.runtime)
		return options_.runtime->blocking();
	std::lock_guard lock(mutex_);
	if (!workers_) {
		std::function<void()> onStart;
		if (options_.ioFlusher)
			onStart = markIoFlusher;
		workers_ = std::make_unique<ThreadPool>(options_.workerThreads, onStart);
	}
	return *workers_;
}

Result<void> Server::run(Session &session, const std::function<Result<void>(Session &)> &body)
{
	{
		std::lock_guard lock(mutex_);
		if (stopping_)
			return unexpected(ESHUTDOWN);
		sessions_.insert(&session);
	}
	if (options_.ioFlusher)
		markIoFlusher();
	counters_.connections.fetch_add(1);
	counters_.activeConnections.fetch_add(1);
	auto result = body(session);
	counters_.activeConnections.fetch_sub(1);
	std::lock_guard lock(mutex_);
	sessions_.erase(&session);
	return result;
}

Result<void> Server::serve(UniqueFd socket)
{
	Session session(*this, std::move(socket));
	return run(session, [](Session &s) { return s.run(); });
}

Result<void> Server::serveTransmission(UniqueFd socket, const std::string &exportName, bool *sawDisc)
{
	const Export *exp = findExport(exportName);
	if (!exp)
		return unexpected(ENOENT);
	Session session(*this, std::move(socket));
	auto r = run(session, [exp](Session &s) { return s.runTransmission(*exp); });
	if (sawDisc)
		*sawDisc = session.sawDisc();
	return r;
}

void Server::acquireBuffers(size_t bytes)
{
	if (bytes == 0)
		return;
	std::unique_lock lock(budgetMutex_);
	budgetCond_.wait(lock, [&] { return budgetUsed_ == 0 || budgetUsed_ + bytes <= options_.maxBufferedBytes; });
	budgetUsed_ += bytes;
}

void Server::releaseBuffers(size_t bytes)
{
	if (bytes == 0)
		return;
	{
		std::lock_guard lock(budgetMutex_);
		budgetUsed_ -= bytes;
	}
	budgetCond_.notify_all();
}

void Server::shutdown()
{
	std::lock_guard lock(mutex_);
	stopping_ = true;
	for (auto *s : sessions_)
		s->stop();
}

Stats Server::stats() const
{
	Stats s;
	s.activeConnections = counters_.activeConnections.load();
	forEachCounterPair(s, counters_,
			   [](const char *, uint64_t &out, const std::atomic<uint64_t> &in) { out = in.load(); });
	return s;
}

} // namespace r3d::nbd
