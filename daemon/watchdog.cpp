#include "watchdog.hpp"

#include <r3d/log.hpp>

#include "notify.hpp"

namespace r3mapd {

Watchdog::Watchdog(boost::asio::io_context &io) : timer_(io) {}

bool Watchdog::start()
{
	auto interval = notify::watchdogInterval();
	if (!interval)
		return false;
	period_ = *interval / 2;
	running_ = true;
	r3d::log::get("daemon")->info("watchdog: pinging every {} ms", period_.count() / 1000);
	notify::watchdog();
	arm();
	return true;
}

void Watchdog::stop()
{
	running_ = false;
	timer_.cancel();
}

void Watchdog::arm()
{
	timer_.expires_after(period_);
	timer_.async_wait([this](const boost::system::error_code &ec) {
		if (ec || !running_)
			return;
		notify::watchdog();
		arm();
	});
}

} // namespace r3mapd
