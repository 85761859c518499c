#pragma once

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace r3mapd {

/// Pets the systemd watchdog (WATCHDOG=1) at half of WatchdogSec from the io_context, so a
/// stuck io_context stops the pings and systemd restarts the daemon.
class Watchdog
{
public:
	explicit Watchdog(boost::asio::io_context &io);

	/// Starts pinging if the service manager enabled the watchdog; returns whether it did.
	bool start();
	void stop();

private:
	void arm();

	boost::asio::steady_timer timer_;
	std::chrono::microseconds period_{ 0 };
	bool running_ = false;
};

} // namespace r3mapd
