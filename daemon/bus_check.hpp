#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace r3mapd {

/// Notices a stalled system bus: r3mapd's bus thread stuck, or dbus-daemon not answering.
/// A thread of its own sends a probe every period (sending may block when the bus is
/// stuck, so not from the io_context); a timer on the io_context compares when the last
/// probe went out with when the last answer came. A stall is logged and shown in the
/// service status, and so is the recovery. Nothing else happens: mounts and exports do
/// not need the bus, and the systemd watchdog keeps being petted (see r3mapd.conf(5)).
class BusCheck
{
public:
	using Clock = std::chrono::steady_clock;
	/// `probe(answered)` asks the bus something; `answered` runs when the answer arrives.
	using Probe = std::function<void(std::function<void()> answered)>;

	BusCheck(boost::asio::io_context &io, Probe probe, std::chrono::seconds period);
	~BusCheck();
	BusCheck(const BusCheck &) = delete;
	BusCheck &operator=(const BusCheck &) = delete;

	void start();
	void stop();
	bool stalled() const { return stalled_; }

private:
	void sendLoop();
	void arm();
	void check();

	boost::asio::steady_timer timer_;
	Probe probe_;
	std::chrono::seconds period_;
	std::thread sender_;
	std::mutex mutex_;
	std::condition_variable wake_;
	bool stopping_ = false;
	std::atomic<int64_t> sentAt_{ 0 };     ///< Clock ticks of the oldest unanswered probe, 0 if none
	std::atomic<int64_t> answeredAt_{ 0 }; ///< Clock ticks of the last answer
	bool stalled_ = false;                 ///< io_context only
};

} // namespace r3mapd
