#pragma once

// The one place a process's threads come from. An io_context drives network I/O and timers
// (RPC clients and servers, channels, deadlines); a bounded pool runs the work that must
// block (NBD request handlers, attach, flush, and the pullers, pushers and fault handlers
// to come). r3mapd and r3serve each own one Runtime and hand it to everything they build,
// so the thread count is a property of the process, not of the number of mounts.

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "base/thread_pool.hpp"

namespace r3d {

struct RuntimeOptions {
	/// Threads running the io_context. Coroutines and handlers never block, so one is
	/// enough for most processes; TLS-heavy servers may want two.
	unsigned ioThreads = 1;
	/// Threads of the blocking pool.
	unsigned blockingThreads = 16;
	/// Runs once on each blocking thread before its first job (e.g. PR_SET_IO_FLUSHER for
	/// threads that serve a kernel device: writeback waiting on them must not recurse).
	std::function<void()> onBlockingStart;
};

class Runtime
{
public:
	explicit Runtime(RuntimeOptions options = {});
	/// Stops the io_context and joins every thread; what uses the runtime must be gone.
	~Runtime();
	Runtime(const Runtime &) = delete;
	Runtime &operator=(const Runtime &) = delete;

	boost::asio::io_context &io() { return io_; }
	/// The bounded pool for work that blocks. Jobs queue FIFO once every thread is busy.
	ThreadPool &blocking() { return *blocking_; }

	/// Threads this runtime owns (io + blocking): the figure r3mapd reports.
	unsigned threadCount() const;

private:
	RuntimeOptions options_;
	boost::asio::io_context io_;
	std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
	std::vector<std::thread> ioThreads_;
	std::unique_ptr<ThreadPool> blocking_;
};

} // namespace r3d
