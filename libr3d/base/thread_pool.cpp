#include "base/thread_pool.hpp"

namespace r3d {

ThreadPool::ThreadPool(unsigned threads, std::function<void()> onStart)
{
	threads_.reserve(threads);
	for (unsigned i = 0; i < threads; ++i)
		threads_.emplace_back([this, onStart] { loop(onStart); });
}

ThreadPool::~ThreadPool()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	cond_.notify_all();
	for (auto &t : threads_)
		t.join();
}

void ThreadPool::post(std::function<void()> job)
{
	{
		std::lock_guard lock(mutex_);
		jobs_.push_back(std::move(job));
	}
	cond_.notify_one();
}

void ThreadPool::loop(const std::function<void()> &onStart)
{
	if (onStart)
		onStart();
	for (;;) {
		std::function<void()> job;
		{
			std::unique_lock lock(mutex_);
			cond_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
			if (jobs_.empty())
				return;
			job = std::move(jobs_.front());
			jobs_.pop_front();
		}
		job();
	}
}

} // namespace r3d
