#include "work_queue.hpp"

#include <boost/asio/post.hpp>

namespace r3mapd {

WorkQueue::WorkQueue(unsigned threads) : pool_(threads) {}

WorkQueue::~WorkQueue()
{
	close();
}

bool WorkQueue::post(std::function<void()> work)
{
	std::lock_guard lock(mutex_);
	if (closed_)
		return false;
	boost::asio::post(pool_, std::move(work));
	return true;
}

void WorkQueue::close()
{
	{
		std::lock_guard lock(mutex_);
		closed_ = true;
	}
	pool_.join();
}

} // namespace r3mapd
