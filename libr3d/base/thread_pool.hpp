#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace r3d {

/// A fixed set of threads running posted jobs in FIFO order. The destructor runs the
/// jobs already posted, then joins.
class ThreadPool
{
public:
	/// `onStart` runs once on each worker before its first job (e.g. prctl settings).
	explicit ThreadPool(unsigned threads, std::function<void()> onStart = {});
	~ThreadPool();
	ThreadPool(const ThreadPool &) = delete;
	ThreadPool &operator=(const ThreadPool &) = delete;

	void post(std::function<void()> job);
	size_t size() const { return threads_.size(); }

private:
	void loop(const std::function<void()> &onStart);

	std::mutex mutex_;
	std::condition_variable cond_;
	std::deque<std::function<void()>> jobs_;
	bool stopping_ = false;
	std::vector<std::thread> threads_;
};

} // namespace r3d
