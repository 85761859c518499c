#pragma once

// The threads that serve userfaultfds: one thread waits on an epoll set holding every
// registered uffd and reads its messages (events are handled right there, they are cheap and
// the process that caused them waits until they are read); page faults are posted to a pool
// of workers, which pull from the backend and may block on it. The reader never blocks on a
// pull, so an event queued behind a fault is read at once, and copies that got EAGAIN
// (layout changing) can go on. Many regions, and the children of forked processes, share
// one server.

#include <functional>
#include <memory>
#include <mutex>
#include <map>
#include <thread>

#include <r3d/result.hpp>
#include <r3d/unique_fd.hpp>

#include "base/thread_pool.hpp"

namespace r3d::uffd {

class FaultServer
{
public:
	/// A uffd's owner: told when the fd is readable, on the server's reader thread.
	class Source
	{
	public:
		virtual ~Source() = default;
		/// Read every queued message (non-blocking); post page faults with post().
		virtual void onReadable() = 0;
	};

	/// `workers`: threads serving page faults (0: two per CPU, at least 4).
	static ResultMsg<std::shared_ptr<FaultServer>> create(unsigned workers = 0);
	/// The process-wide server, created on first use and shared while anyone holds it.
	static ResultMsg<std::shared_ptr<FaultServer>> shared();
	~FaultServer();
	FaultServer(const FaultServer &) = delete;
	FaultServer &operator=(const FaultServer &) = delete;

	/// Starts watching `fd` for `source` (which must outlive its remove()).
	Result<void> add(int fd, Source *source);
	/// Stops watching: when it returns, onReadable() of `source` is not running and will not
	/// be called again. May be called from onReadable() itself.
	void remove(Source *source);
	/// Runs `job` on a worker.
	void post(std::function<void()> job);
	unsigned workers() const { return static_cast<unsigned>(pool_->size()); }

private:
	FaultServer(UniqueFd epoll, UniqueFd stop, unsigned workers);
	void loop();

	UniqueFd epoll_;
	UniqueFd stop_; ///< an eventfd that ends loop()
	std::unique_ptr<ThreadPool> pool_;
	std::mutex mutex_; ///< held while a source is being called
	std::map<Source *, int> sources_; ///< and their fds
	std::thread thread_;
	std::thread::id loopId_;
};

} // namespace r3d::uffd
