#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "base/thread_pool.hpp"

namespace r3mapd {

/// Worker threads for D-Bus calls that block (backend open, kernel attach, flush), so
/// neither the bus thread nor the io_context ever waits on I/O. Kept apart from the
/// Runtime's blocking pool on purpose: an Unmount here waits for the kernel's FLUSH, which
/// the NBD server answers from that pool; sharing one pool could deadlock.
class WorkQueue
{
public:
	explicit WorkQueue(unsigned threads);
	~WorkQueue();
	WorkQueue(const WorkQueue &) = delete;
	WorkQueue &operator=(const WorkQueue &) = delete;

	/// Runs `work` on a worker; false (and `work` is dropped) once close() has begun.
	bool post(std::function<void()> work);
	/// Refuses new work and waits for the work already posted. Idempotent.
	void close();

private:
	std::mutex mutex_;
	std::unique_ptr<r3d::ThreadPool> pool_; ///< null once closed
};

} // namespace r3mapd
