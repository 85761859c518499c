#pragma once

#include <functional>
#include <mutex>

#include <boost/asio/thread_pool.hpp>

namespace r3mapd {

/// Worker threads for calls that block (backend open, kernel attach, flush), so neither
/// the bus thread nor the io_context ever waits on I/O.
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
	bool closed_ = false;
	boost::asio::thread_pool pool_;
};

} // namespace r3mapd
