#include "base/runtime.hpp"

#include <algorithm>

namespace r3d {

Runtime::Runtime(RuntimeOptions options)
	: options_(std::move(options)), guard_(boost::asio::make_work_guard(io_))
{
	unsigned io = std::max(options_.ioThreads, 1u);
	ioThreads_.reserve(io);
	for (unsigned i = 0; i < io; ++i)
		ioThreads_.emplace_back([this] { io_.run(); });
	blocking_ = std::make_unique<ThreadPool>(std::max(options_.blockingThreads, 1u), options_.onBlockingStart);
}

Runtime::~Runtime()
{
	// Jobs already posted still run (they may post to the io_context), then the pool joins.
	blocking_.reset();
	guard_.reset();
	io_.stop();
	for (auto &t : ioThreads_)
		t.join();
}

unsigned Runtime::threadCount() const
{
	return static_cast<unsigned>(ioThreads_.size() + blocking_->size());
}

} // namespace r3d
