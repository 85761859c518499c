#include "work_queue.hpp"

namespace r3mapd {

WorkQueue::WorkQueue(unsigned threads) : pool_(std::make_unique<r3d::ThreadPool>(threads)) {}

WorkQueue::~WorkQueue()
{
	close();
}

bool WorkQueue::post(std::function<void()> work)
{
	std::lock_guard lock(mutex_);
	if (!pool_)
		return false;
	pool_->post(std::move(work));
	return true;
}

void WorkQueue::close()
{
	std::unique_ptr<r3d::ThreadPool> pool;
	{
		std::lock_guard lock(mutex_);
		pool = std::move(pool_);
	}
	// Runs what was posted, then joins; outside the lock, since that work may post.
	pool.reset();
}

} // namespace r3mapd
