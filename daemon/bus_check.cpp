#include "bus_check.hpp"

#include <r3d/log.hpp>

#include "notify.hpp"

namespace r3mapd {

namespace {

int64_t ticks(BusCheck::Clock::time_point t)
{
	return t.time_since_epoch().count();
}

} // namespace

BusCheck::BusCheck(boost::asio::io_context &io, Probe probe, std::chrono::seconds period)
	: timer_(io), probe_(std::move(probe)), period_(period)
{
}

BusCheck::~BusCheck()
{
	stop();
}

void BusCheck::start()
{
	if (period_.count() == 0 || sender_.joinable())
		return;
	answeredAt_ = ticks(Clock::now());
	sender_ = std::thread([this] { sendLoop(); });
	arm();
}

void BusCheck::stop()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	wake_.notify_all();
	timer_.cancel();
	// A sender blocked inside the bus library returns once the bus is closed (stop()
	// of the bus service comes after ours) or answers; it must not be left running.
	if (sender_.joinable())
		sender_.join();
}

void BusCheck::sendLoop()
{
	std::unique_lock lock(mutex_);
	while (!stopping_) {
		lock.unlock();
		// Only one probe outstanding: its send time is kept until it is answered.
		int64_t none = 0;
		int64_t now = ticks(Clock::now());
		if (sentAt_.compare_exchange_strong(none, now))
			probe_([this] {
				answeredAt_ = ticks(Clock::now());
				sentAt_ = 0;
			});
		lock.lock();
		wake_.wait_for(lock, period_, [this] { return stopping_; });
	}
}

void BusCheck::arm()
{
	timer_.expires_after(period_);
	timer_.async_wait([this](const boost::system::error_code &ec) {
		if (ec)
			return;
		check();
		arm();
	});
}

void BusCheck::check()
{
	auto log = r3d::log::get("daemon");
	int64_t sent = sentAt_.load();
	auto now = Clock::now();
	bool late = sent != 0 && now - Clock::time_point(Clock::duration(sent)) > period_;
	if (late && !stalled_) {
		stalled_ = true;
		auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - Clock::time_point(Clock::duration(sent)));
		log->error("the system bus has not answered for {} s (r3mapd's bus thread or dbus-daemon is stalled): "
			   "D-Bus calls wait; mounts and exports are still served",
			   waited.count());
		notify::status("the system bus does not answer; mounts and exports are still served");
	} else if (!late && stalled_) {
		stalled_ = false;
		log->warn("the system bus answers again");
		notify::status("serving org.r3map.r3mapd");
	}
}

} // namespace r3mapd
